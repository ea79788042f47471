//! The exam as an HL7 v2.5 result message (ORU^R01), the way results reach
//! an electronic patient record through the hospital's interface engine.
//!
//! ```text
//! MSH|^~\&|PLEURA|AE|RECEIVER|FACILITY|20261202101500||ORU^R01^ORU_R01|CONTROL|P|2.5
//! PID|1||ID^^^^MR||FAMILY^GIVEN||BIRTH|SEX
//! OBR|1||ACCESSION|LUS^Lung ultrasound examination^99PLEURA|||START|||||||||||||||END||US|F
//! OBX|1|NM|ZONESCORE^Lung ultrasound zone score^99PLEURA|R1|2|{score}^score^UCUM|0-3|||...|F
//! OBX|n|NM|LUSTOTAL^Lung ultrasound score^99PLEURA||15|{score}^score^UCUM|0-36|||...|F
//! ```
//!
//! One OBX per recorded zone (OBX-4 names the zone) and one for the total.
//! The message control ID (MSH-10) derives from the exam's UID root, so a
//! message sent again is the same message, which a receiver can drop as a
//! duplicate.

use super::ExamFacts;
use super::dicom::date_time;
use sha2::{Digest, Sha256};

/// The segment separator.
pub const SEGMENT_END: char = '\r';

/// An HL7 v2 message, segments ended by carriage returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Message {
    /// The message control ID (MSH-10).
    pub control_id: String,
    /// The whole message.
    pub text: String,
}

/// Escapes HL7's delimiters in a field's text (`\F\`, `\S\`, `\T\`,
/// `\R\`, `\E\`) and drops line breaks, which would end the segment.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A DICOM person name (`FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX`) as an HL7 XPN
/// (the same components, in the same order, each escaped).
fn person_name(name: &str) -> String {
    name.split('^').map(escape).collect::<Vec<_>>().join("^")
}

/// The ORU^R01 of a finished exam, from `station_ae` to `receiver`
/// (application and facility).
pub(crate) fn result_message(
    exam: &ExamFacts,
    station_ae: &str,
    receiver: (&str, &str),
) -> Hl7Message {
    let identity = &exam.identity;
    let control_id = control_id(&identity.uid_root);
    let timestamp = |seconds| {
        let (date, time) = date_time(seconds);
        format!("{date}{time}")
    };
    let finished = timestamp(exam.finished_at);
    let mut segments = vec![format!(
        "MSH|^~\\&|PLEURA|{}|{}|{}|{finished}||ORU^R01^ORU_R01|{control_id}|P|2.5|||AL|NE||UNICODE UTF-8",
        escape(station_ae),
        escape(receiver.0),
        escape(receiver.1),
    )];
    segments.push(match &identity.patient {
        Some(patient) => format!(
            "PID|1||{}^^^^MR||{}||{}|{}",
            escape(&patient.id),
            person_name(&patient.name),
            patient.birth_date.as_deref().unwrap_or(""),
            patient.sex.as_deref().unwrap_or("U"),
        ),
        // Anonymous: identified by the accession number until the record
        // merges it with the patient.
        None => format!(
            "PID|1||{}^^^^ANON||ANONYMOUS||||U",
            escape(&identity.accession)
        ),
    });
    segments.push(format!(
        "OBR|1||{}|LUS^Lung ultrasound examination^99PLEURA|||{}|||||||||||||||{finished}||US|F",
        escape(&identity.accession),
        timestamp(exam.started_at),
    ));
    let mut set_id = 0;
    for (zone, score) in exam.zones.iter().enumerate() {
        let Some(score) = score else { continue };
        set_id += 1;
        segments.push(format!(
            "OBX|{set_id}|NM|ZONESCORE^Lung ultrasound zone score^99PLEURA|{}|{}|{{score}}^score^UCUM|0-3|||||F|||{finished}",
            escape(exam.zone_name(zone)),
            score.score,
        ));
    }
    segments.push(format!(
        "OBX|{}|NM|LUSTOTAL^Lung ultrasound score^99PLEURA|{}|{}|{{score}}^score^UCUM|0-{}|||||F|||{finished}",
        set_id + 1,
        exam.protocol.name(),
        exam.total(),
        3 * exam.zones.len(),
    ));
    let mut text = segments.join("\r");
    text.push(SEGMENT_END);
    Hl7Message { control_id, text }
}

/// The message control ID of the exam under `uid_root`: 20 hex digits of
/// its SHA-256, the longest MSH-10 that v2.5 allows.
fn control_id(uid_root: &str) -> String {
    let digest = Sha256::digest(uid_root.as_bytes());
    digest.iter().take(10).map(|b| format!("{b:02X}")).collect()
}

/// A receiver's acknowledgement (ACK): its code and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// MSA-1: `AA` (accepted), `AE` (error) or `AR` (rejected), or the
    /// enhanced-mode `CA`, `CE`, `CR`.
    pub code: String,
    /// MSA-2: the control ID it answers.
    pub control_id: String,
    /// Why, for an error: MSA-3 and any ERR segment's text.
    pub reason: String,
}

impl Acknowledgement {
    /// Whether the receiver took the message.
    pub fn accepted(&self) -> bool {
        matches!(self.code.as_str(), "AA" | "CA")
    }
}

/// Reads an ACK; `None` when the text holds no MSA segment.
pub fn parse_acknowledgement(text: &str) -> Option<Acknowledgement> {
    let segments: Vec<&str> = text.split(['\r', '\n']).filter(|s| !s.is_empty()).collect();
    let msa: Vec<&str> = segments
        .iter()
        .find(|s| s.starts_with("MSA|"))?
        .split('|')
        .collect();
    let field = |fields: &[&str], n: usize| fields.get(n).copied().unwrap_or("").to_string();
    let mut reason = field(&msa, 3);
    for err in segments.iter().filter(|s| s.starts_with("ERR|")) {
        let text = err
            .split('|')
            .filter(|f| !f.is_empty())
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() {
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            reason.push_str(&text);
        }
    }
    Some(Acknowledgement {
        code: field(&msa, 1),
        control_id: field(&msa, 2),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_in_text_are_escaped() {
        assert_eq!(
            escape("a|b^c&d~e\\f\ng"),
            "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f g"
        );
        assert_eq!(person_name("O|NEIL^ANN"), "O\\F\\NEIL^ANN");
    }

    #[test]
    fn an_ack_says_whether_it_was_taken_and_why_not() {
        let ack = parse_acknowledgement(
            "MSH|^~\\&|ENGINE|H|PLEURA|AE|20261202||ACK^R01|9|P|2.5\rMSA|AE|ABC|unknown patient\rERR|||207|E\r",
        )
        .unwrap();
        assert!(!ack.accepted());
        assert_eq!(ack.control_id, "ABC");
        assert!(ack.reason.contains("unknown patient") && ack.reason.contains("207"));
        assert!(parse_acknowledgement("MSA|AA|ABC\r").unwrap().accepted());
        assert_eq!(parse_acknowledgement("MSH|^~\\&\r"), None);
    }

    #[test]
    fn the_control_id_is_stable_and_fits_msh_10() {
        assert_eq!(control_id("2.25.1"), control_id("2.25.1"));
        assert_ne!(control_id("2.25.1"), control_id("2.25.2"));
        assert_eq!(control_id("2.25.1").len(), 20);
    }
}
