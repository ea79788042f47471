//! Whose exam it is, and the identifiers the hospital knows it by.
//!
//! An exam started from a worklist entry carries the scheduled patient,
//! accession number and study UID; without one it is anonymous, with an
//! accession number made on the unit. Either way every DICOM UID of the
//! exam's objects derives from one root made when the exam starts
//! ([`ExamIdentity::uid_root`]) and journaled with it, so that sending an
//! exam again sends the same instances, never duplicates.
//!
//! The root is `2.25.` and a random 128-bit number in decimal: the UUID
//! form of ISO/IEC 9834-8 that needs no registered organization root
//! (PS3.5 B.2).

use serde::{Deserialize, Serialize};

/// The patient an exam is of, as the worklist named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// DICOM person name: `FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX`.
    pub name: String,
    /// The hospital's patient ID.
    pub id: String,
    /// Birth date, `YYYYMMDD`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Sex: `M`, `F` or `O`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
}

/// The identity of an exam: whose it is and the hospital's identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamIdentity {
    /// The patient, or `None` for an anonymous exam (no worklist, or none
    /// reachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Patient>,
    /// The accession number: the worklist's, or one made on the unit
    /// (`PL` and 14 characters) for an anonymous exam.
    pub accession: String,
    /// The study instance UID: the worklist's, or one under the root.
    pub study_uid: String,
    /// The root every other UID of the exam is made under.
    pub uid_root: String,
}

/// An exam the hospital scheduled for this unit, from its worklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The patient.
    pub patient: Patient,
    /// The accession number.
    pub accession: String,
    /// The study instance UID the exam's objects go under.
    pub study_uid: String,
    /// What was asked for (the requested procedure or the step).
    pub description: String,
    /// The scheduled time, `HHMMSS` (may be empty).
    pub time: String,
}

impl Scheduled {
    /// The identity of an exam started for it, with a fresh UID root.
    pub fn identity(&self) -> ExamIdentity {
        ExamIdentity::scheduled(
            self.patient.clone(),
            self.accession.clone(),
            self.study_uid.clone(),
        )
    }
}

/// The kinds of object an exam sends, each in its own series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    /// The zones' ultrasound clips.
    Clips,
    /// The captured summary screen.
    Summary,
    /// The structured report.
    Report,
}

impl SeriesKind {
    /// The series number, and the arc under the root that the series uses.
    pub fn number(self) -> u32 {
        match self {
            SeriesKind::Clips => 1,
            SeriesKind::Summary => 2,
            SeriesKind::Report => 3,
        }
    }
}

/// A UID longer than DICOM's 64 characters, or not digits and dots.
const MAX_UID: usize = 64;

/// Why a journaled identity cannot be one Pleura made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity {field}: {rule}")]
pub struct IdentityError {
    /// The field.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: &'static str,
}

impl ExamIdentity {
    /// An anonymous exam started at `time` (seconds since the epoch), with
    /// a fresh UID root and accession number.
    pub fn anonymous(time: u64) -> Self {
        let uid_root = new_uid_root();
        Self {
            patient: None,
            accession: anonymous_accession(time, rand::random()),
            study_uid: format!("{uid_root}.{STUDY_ARC}"),
            uid_root,
        }
    }

    /// An exam of a scheduled `patient`, under the worklist's accession
    /// number and study UID, with a fresh UID root.
    pub fn scheduled(patient: Patient, accession: String, study_uid: String) -> Self {
        Self {
            patient: Some(patient),
            accession,
            study_uid,
            uid_root: new_uid_root(),
        }
    }

    /// The series instance UID of `kind`.
    pub fn series_uid(&self, kind: SeriesKind) -> String {
        format!("{}.{}", self.uid_root, kind.number())
    }

    /// The SOP instance UID of the `number`th object (from 1) of `kind`.
    pub fn instance_uid(&self, kind: SeriesKind, number: u32) -> String {
        format!("{}.{}.{number}", self.uid_root, kind.number())
    }

    /// Checks a journaled identity: DICOM's lengths and characters, so that
    /// every object made from it is valid.
    pub fn check(&self) -> Result<(), IdentityError> {
        let fail = |field, rule| Err(IdentityError { field, rule });
        if !is_uid(&self.uid_root) || self.uid_root.len() > MAX_UID - 8 {
            return fail("uid_root", "a UID of at most 56 characters");
        }
        if !is_uid(&self.study_uid) {
            return fail("study_uid", "a UID: digits and dots, at most 64 characters");
        }
        if self.accession.is_empty() || !is_text(&self.accession, 16) {
            return fail(
                "accession",
                "1 to 16 characters, no control characters or '\\'",
            );
        }
        let Some(patient) = &self.patient else {
            return Ok(());
        };
        // A person name: up to three component groups of 64 characters.
        if patient.name.chars().any(|c| c.is_control()) || patient.name.chars().count() > 3 * 64 {
            return fail("patient.name", "a person name of at most 192 characters");
        }
        if !is_text(&patient.id, 64) {
            return fail(
                "patient.id",
                "at most 64 characters, no control characters or '\\'",
            );
        }
        if let Some(date) = &patient.birth_date
            && !(date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
        {
            return fail("patient.birth_date", "a date YYYYMMDD");
        }
        if let Some(sex) = &patient.sex
            && !matches!(sex.as_str(), "M" | "F" | "O")
        {
            return fail("patient.sex", "M, F or O");
        }
        Ok(())
    }
}

/// The arc under the root of an anonymous exam's study UID (the series
/// use 1 to 3).
const STUDY_ARC: u32 = 9;

/// A new root: `2.25.` and 128 random bits in decimal (at most 44
/// characters).
fn new_uid_root() -> String {
    format!("2.25.{}", rand::random::<u128>())
}

/// `PL`, then the time and a random number in base 36: 16 characters, the
/// most DICOM's accession number (SH) holds, unique across units without a
/// counter.
fn anonymous_accession(time: u64, random: u64) -> String {
    format!(
        "PL{}{}",
        base36(time % 36u64.pow(7), 7),
        base36(random % 36u64.pow(7), 7)
    )
}

fn base36(mut value: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A DICOM UID: components of digits without leading zeros, dots between,
/// at most 64 characters.
pub(crate) fn is_uid(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_UID
        && text.split('.').all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc == "0" || !arc.starts_with('0'))
        })
}

/// Short text DICOM can hold: at most `max` characters, no control
/// characters and no backslash (the value separator).
fn is_text(text: &str, max: usize) -> bool {
    text.chars().count() <= max && !text.chars().any(|c| c.is_control() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anonymous_exam_has_a_valid_root_study_and_accession_and_each_exam_its_own() {
        let a = ExamIdentity::anonymous(1_764_700_000);
        let b = ExamIdentity::anonymous(1_764_700_000);
        assert_eq!(a.check(), Ok(()));
        assert!(a.uid_root.starts_with("2.25.") && a.uid_root.len() <= 44);
        assert_eq!(a.accession.len(), 16);
        assert!(a.accession.starts_with("PL"));
        assert_ne!(a.uid_root, b.uid_root);
        assert_ne!(a.accession, b.accession);
        assert!(is_uid(&a.instance_uid(SeriesKind::Clips, 14)));
        assert_ne!(a.series_uid(SeriesKind::Clips), a.study_uid);
    }

    #[test]
    fn uids_follow_dicom_rules() {
        assert!(is_uid("1.2.840.10008.1.1"));
        assert!(is_uid("2.25.0"));
        assert!(!is_uid("1.02.3"), "leading zero");
        assert!(!is_uid("1..2"));
        assert!(!is_uid("1.2a"));
        assert!(!is_uid(&"1.".repeat(40)));
    }

    #[test]
    fn a_journaled_identity_that_dicom_cannot_hold_is_named() {
        let mut identity = ExamIdentity::scheduled(
            Patient {
                name: "DOE^JANE".into(),
                id: "12345".into(),
                birth_date: Some("19700101".into()),
                sex: Some("F".into()),
            },
            "ACC1".into(),
            "1.2.3.4".into(),
        );
        assert_eq!(identity.check(), Ok(()));
        identity.patient.as_mut().unwrap().sex = Some("female".into());
        assert_eq!(identity.check().unwrap_err().field, "patient.sex");
        identity.patient.as_mut().unwrap().sex = None;
        identity.accession = "A".repeat(17);
        assert_eq!(identity.check().unwrap_err().field, "accession");
    }
}
