//! The exam's structured report: a Comprehensive SR that follows TID 1500
//! (Measurement Report), so that a PACS, a viewer or a registry reads the
//! scores as data, not as a picture.
//!
//! ```text
//! CONTAINER Imaging Measurement Report (TID 1500)
//! ├─ HAS CONCEPT MOD  Language of Content Item and Descendants = English (US)
//! ├─ HAS OBS CONTEXT  Observer Type = Device, with the device's UID, name,
//! │                   manufacturer and model (TID 1002/1004)
//! ├─ HAS CONCEPT MOD  Procedure reported = Lung ultrasound examination
//! └─ CONTAINS CONTAINER Imaging Measurements
//!    ├─ CONTAINER Measurement Group (TID 1501), one per recorded zone:
//!    │  tracking identifier and UID, the finding site (lung, with its
//!    │  laterality), the zone, the algorithm, each finding present,
//!    │  NUM zone score {score} (INFERRED FROM the zone's clip),
//!    │  NUM score confidence, NUM each finding's probability
//!    └─ CONTAINER Measurement Group: the protocol and NUM the exam total
//! ```
//!
//! Where no standard code exists the codes are Pleura's own, in the
//! private scheme `99PLEURA` ([`PLEURA_CODES`], listed in the README).

use super::dicom::{COMPREHENSIVE_SR, Object, US_MULTIFRAME, common, item, put_sequence, put_text};
use super::{ExamFacts, Station};
use crate::exam::SeriesKind;
use crate::model::heads::{FINDING_THRESHOLD, FINDINGS};
use dicom_core::VR;
use dicom_dictionary_std::tags;

/// A coded concept: code value, coding scheme designator, code meaning.
pub(crate) type Code = (&'static str, &'static str, &'static str);

/// The private coding scheme of Pleura's own concepts.
pub const PLEURA_SCHEME: &str = "99PLEURA";

const REPORT: Code = ("126000", "DCM", "Imaging Measurement Report");
const LANGUAGE: Code = ("121049", "DCM", "Language of Content Item and Descendants");
const ENGLISH_US: Code = ("en-US", "RFC5646", "English (United States)");
const OBSERVER_TYPE: Code = ("121005", "DCM", "Observer Type");
const DEVICE: Code = ("121007", "DCM", "Device");
const DEVICE_UID: Code = ("121012", "DCM", "Device Observer UID");
const DEVICE_NAME: Code = ("121013", "DCM", "Device Observer Name");
const DEVICE_MANUFACTURER: Code = ("121014", "DCM", "Device Observer Manufacturer");
const DEVICE_MODEL: Code = ("121015", "DCM", "Device Observer Model Name");
const PROCEDURE_REPORTED: Code = ("121058", "DCM", "Procedure reported");
const MEASUREMENTS: Code = ("126010", "DCM", "Imaging Measurements");
const GROUP: Code = ("125007", "DCM", "Measurement Group");
const TRACKING_ID: Code = ("112039", "DCM", "Tracking Identifier");
const TRACKING_UID: Code = ("112040", "DCM", "Tracking Unique Identifier");
const FINDING: Code = ("121071", "DCM", "Finding");
const FINDING_SITE: Code = ("363698007", "SCT", "Finding Site");
const LUNG: Code = ("39607008", "SCT", "Lung structure");
const LATERALITY: Code = ("272741003", "SCT", "Laterality");
const RIGHT: Code = ("24028007", "SCT", "Right");
const LEFT: Code = ("7771000", "SCT", "Left");
const ALGORITHM_NAME: Code = ("111001", "DCM", "Algorithm Name");
const ALGORITHM_VERSION: Code = ("111003", "DCM", "Algorithm Version");
const SOURCE: Code = ("121112", "DCM", "Source of Measurement");
const SCORE_UNIT: Code = ("{score}", "UCUM", "score");
const NO_UNITS: Code = ("1", "UCUM", "no units");

const LUS_EXAM: Code = ("LUS", PLEURA_SCHEME, "Lung ultrasound examination");
const ZONE: Code = ("ZONE", PLEURA_SCHEME, "Lung ultrasound zone");
const ZONE_SCORE: Code = ("ZONESCORE", PLEURA_SCHEME, "Lung ultrasound zone score");
const CONFIDENCE: Code = ("CONFIDENCE", PLEURA_SCHEME, "Score confidence");
const RECORDED_BY: Code = ("RECORDEDBY", PLEURA_SCHEME, "Zone recorded by");
const BUTTON: Code = ("BUTTON", PLEURA_SCHEME, "Clinician's record button");
const STABLE: Code = ("STABLE", PLEURA_SCHEME, "Stable score");
const TOTAL: Code = ("LUSTOTAL", PLEURA_SCHEME, "Lung ultrasound score");
const MAX_TOTAL: Code = ("LUSMAX", PLEURA_SCHEME, "Highest lung ultrasound score");
const PROTOCOL: Code = ("PROTOCOL", PLEURA_SCHEME, "Lung ultrasound protocol");
const ZONES_RECORDED: Code = ("ZONES", PLEURA_SCHEME, "Zones recorded");
const ZONES_12: Code = ("12ZONE", PLEURA_SCHEME, "12-zone protocol");
const ZONES_14: Code = ("14ZONE", PLEURA_SCHEME, "14-zone protocol");
const BLUE: Code = ("BLUE", PLEURA_SCHEME, "BLUE protocol");

/// The findings as coded concepts ([`FINDINGS`] order), and the concept of
/// each one's probability.
const FINDING_CODES: [(Code, Code); FINDINGS.len()] = [
    (
        ("ALINES", PLEURA_SCHEME, "A-lines"),
        ("P-ALINES", PLEURA_SCHEME, "Probability of A-lines"),
    ),
    (
        ("BLINES", PLEURA_SCHEME, "B-lines"),
        ("P-BLINES", PLEURA_SCHEME, "Probability of B-lines"),
    ),
    (
        ("CONSOLIDATION", PLEURA_SCHEME, "Consolidation"),
        (
            "P-CONSOLIDATION",
            PLEURA_SCHEME,
            "Probability of consolidation",
        ),
    ),
    (
        ("PLEURA", PLEURA_SCHEME, "Pleural line abnormality"),
        (
            "P-PLEURA",
            PLEURA_SCHEME,
            "Probability of pleural line abnormality",
        ),
    ),
];

/// Every code of the private scheme but the zones' (whose values are the
/// zone names): the README's table lists each.
pub const PLEURA_CODES: &[Code] = &[
    LUS_EXAM,
    ZONE,
    ZONE_SCORE,
    CONFIDENCE,
    RECORDED_BY,
    BUTTON,
    STABLE,
    TOTAL,
    MAX_TOTAL,
    PROTOCOL,
    ZONES_RECORDED,
    ZONES_12,
    ZONES_14,
    BLUE,
    FINDING_CODES[0].0,
    FINDING_CODES[0].1,
    FINDING_CODES[1].0,
    FINDING_CODES[1].1,
    FINDING_CODES[2].0,
    FINDING_CODES[2].1,
    FINDING_CODES[3].0,
    FINDING_CODES[3].1,
];

/// A code sequence item.
fn code_item(code: Code) -> Object {
    item(&[
        (tags::CODE_VALUE, VR::SH, code.0),
        (tags::CODING_SCHEME_DESIGNATOR, VR::SH, code.1),
        (tags::CODE_MEANING, VR::LO, code.2),
    ])
}

/// A content item of `value_type` named `concept`, related to its parent
/// by `relationship`.
fn content(relationship: &str, value_type: &str, concept: Code) -> Object {
    let mut object = item(&[
        (tags::RELATIONSHIP_TYPE, VR::CS, relationship),
        (tags::VALUE_TYPE, VR::CS, value_type),
    ]);
    put_sequence(
        &mut object,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(concept)],
    );
    object
}

fn text(relationship: &str, concept: Code, value: &str) -> Object {
    let mut object = content(relationship, "TEXT", concept);
    put_text(&mut object, tags::TEXT_VALUE, VR::UT, value);
    object
}

fn code(relationship: &str, concept: Code, value: Code) -> Object {
    let mut object = content(relationship, "CODE", concept);
    put_sequence(
        &mut object,
        tags::CONCEPT_CODE_SEQUENCE,
        vec![code_item(value)],
    );
    object
}

fn uid(relationship: &str, concept: Code, value: &str) -> Object {
    let mut object = content(relationship, "UIDREF", concept);
    put_text(&mut object, tags::UID, VR::UI, value);
    object
}

/// A NUM item: `value` in `unit`, written with at most `decimals`
/// decimals (a DS holds 16 characters).
fn num(relationship: &str, concept: Code, value: f64, decimals: usize, unit: Code) -> Object {
    let mut object = content(relationship, "NUM", concept);
    let mut measured = item(&[(tags::NUMERIC_VALUE, VR::DS, &format!("{value:.decimals$}"))]);
    put_sequence(
        &mut measured,
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![code_item(unit)],
    );
    put_sequence(&mut object, tags::MEASURED_VALUE_SEQUENCE, vec![measured]);
    object
}

fn image(relationship: &str, concept: Code, sop_class: &str, sop_instance: &str) -> Object {
    let mut object = content(relationship, "IMAGE", concept);
    put_sequence(
        &mut object,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![item(&[
            (tags::REFERENCED_SOP_CLASS_UID, VR::UI, sop_class),
            (tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, sop_instance),
        ])],
    );
    object
}

fn container(relationship: &str, concept: Code, children: Vec<Object>) -> Object {
    let mut object = content(relationship, "CONTAINER", concept);
    put_text(&mut object, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    with_children(object, children)
}

fn with_children(mut object: Object, children: Vec<Object>) -> Object {
    if !children.is_empty() {
        put_sequence(&mut object, tags::CONTENT_SEQUENCE, children);
    }
    object
}

/// The DICOM objects a report references, by series: (series UID, SOP
/// class, instance UIDs).
pub(crate) struct Evidence<'a> {
    /// The zones' clips: (zone, instance UID).
    pub clips: &'a [(usize, String)],
    /// The summary capture's instance UID.
    pub summary: &'a str,
}

/// The exam's Comprehensive SR.
pub(crate) fn structured_report(
    exam: &ExamFacts,
    station: &Station,
    evidence: &Evidence<'_>,
) -> Object {
    let identity = &exam.identity;
    let mut object = common(
        exam,
        station,
        COMPREHENSIVE_SR,
        SeriesKind::Report,
        "SR",
        "Lung ultrasound score report",
        1,
    );
    // SOP Common: the private coding scheme, declared.
    put_sequence(
        &mut object,
        tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE,
        vec![item(&[
            (tags::CODING_SCHEME_DESIGNATOR, VR::SH, PLEURA_SCHEME),
            (
                tags::CODING_SCHEME_NAME,
                VR::ST,
                "Pleura lung ultrasound codes",
            ),
            (
                tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION,
                VR::ST,
                "Pleura",
            ),
        ])],
    );
    // SR Document Series and General
    put_sequence(
        &mut object,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        Vec::new(),
    );
    put_text(&mut object, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put_text(&mut object, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put_sequence(
        &mut object,
        tags::PERFORMED_PROCEDURE_CODE_SEQUENCE,
        vec![code_item(LUS_EXAM)],
    );
    put_sequence(
        &mut object,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![evidence_item(exam, evidence)],
    );
    if identity.patient.is_some() {
        // Made for a scheduled procedure: the request it answers.
        let mut request = item(&[
            (
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                identity.study_uid.as_str(),
            ),
            (tags::ACCESSION_NUMBER, VR::SH, identity.accession.as_str()),
            (tags::REQUESTED_PROCEDURE_ID, VR::SH, ""),
            (
                tags::PLACER_ORDER_NUMBER_IMAGING_SERVICE_REQUEST,
                VR::LO,
                "",
            ),
            (
                tags::FILLER_ORDER_NUMBER_IMAGING_SERVICE_REQUEST,
                VR::LO,
                "",
            ),
            (tags::REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, ""),
        ]);
        put_sequence(&mut request, tags::REFERENCED_STUDY_SEQUENCE, Vec::new());
        put_sequence(
            &mut request,
            tags::REQUESTED_PROCEDURE_CODE_SEQUENCE,
            Vec::new(),
        );
        put_sequence(
            &mut object,
            tags::REFERENCED_REQUEST_SEQUENCE,
            vec![request],
        );
    }
    // SR Document Content: the root container and its tree.
    put_text(&mut object, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_sequence(
        &mut object,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(REPORT)],
    );
    put_text(&mut object, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    put_sequence(
        &mut object,
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![item(&[
            (tags::MAPPING_RESOURCE, VR::CS, "DCMR"),
            (tags::TEMPLATE_IDENTIFIER, VR::CS, "1500"),
        ])],
    );
    let mut groups: Vec<Object> = exam
        .zones
        .iter()
        .enumerate()
        .filter_map(|(zone, score)| score.map(|score| (zone, score)))
        .map(|(zone, score)| {
            let clip = evidence
                .clips
                .iter()
                .find(|(z, _)| *z == zone)
                .map(|(_, uid)| uid.as_str());
            zone_group(exam, zone, &score, clip)
        })
        .collect();
    groups.push(total_group(exam));
    let observer_uid = station.device_uid();
    let children = vec![
        code("HAS CONCEPT MOD", LANGUAGE, ENGLISH_US),
        code("HAS OBS CONTEXT", OBSERVER_TYPE, DEVICE),
        uid("HAS OBS CONTEXT", DEVICE_UID, &observer_uid),
        text("HAS OBS CONTEXT", DEVICE_NAME, &station.ae_title),
        text("HAS OBS CONTEXT", DEVICE_MANUFACTURER, "Pleura"),
        text("HAS OBS CONTEXT", DEVICE_MODEL, &station.board),
        code("HAS CONCEPT MOD", PROCEDURE_REPORTED, LUS_EXAM),
        container("CONTAINS", MEASUREMENTS, groups),
    ];
    put_sequence(&mut object, tags::CONTENT_SEQUENCE, children);
    object
}

/// The instances the report stands on: the clips and the summary capture.
fn evidence_item(exam: &ExamFacts, evidence: &Evidence<'_>) -> Object {
    let identity = &exam.identity;
    let series = |kind, class: &str, uids: Vec<&str>| {
        let mut series = item(&[(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            identity.series_uid(kind).as_str(),
        )]);
        let instances = uids
            .into_iter()
            .map(|uid| {
                item(&[
                    (tags::REFERENCED_SOP_CLASS_UID, VR::UI, class),
                    (tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, uid),
                ])
            })
            .collect();
        put_sequence(&mut series, tags::REFERENCED_SOP_SEQUENCE, instances);
        series
    };
    let mut all = Vec::new();
    if !evidence.clips.is_empty() {
        let clips = evidence.clips.iter().map(|(_, uid)| uid.as_str()).collect();
        all.push(series(SeriesKind::Clips, US_MULTIFRAME, clips));
    }
    all.push(series(
        SeriesKind::Summary,
        super::dicom::SECONDARY_CAPTURE,
        vec![evidence.summary],
    ));
    let mut study = item(&[(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        identity.study_uid.as_str(),
    )]);
    put_sequence(&mut study, tags::REFERENCED_SERIES_SEQUENCE, all);
    study
}

/// TID 1501 for one recorded zone.
fn zone_group(
    exam: &ExamFacts,
    zone: usize,
    score: &crate::exam::ZoneScore,
    clip: Option<&str>,
) -> Object {
    let name = exam.zone_name(zone);
    let side = match exam.laterality(zone) {
        "R" => RIGHT,
        _ => LEFT,
    };
    let tracking_uid = format!("{}.4.{}", exam.identity.uid_root, zone + 1);
    let zone_code: Code = (name, PLEURA_SCHEME, name);
    let mut score_item = num(
        "CONTAINS",
        ZONE_SCORE,
        f64::from(score.score),
        0,
        SCORE_UNIT,
    );
    if let Some(clip) = clip {
        score_item = with_children(
            score_item,
            vec![image("INFERRED FROM", SOURCE, US_MULTIFRAME, clip)],
        );
    }
    let site = with_children(
        code("HAS CONCEPT MOD", FINDING_SITE, LUNG),
        vec![code("HAS CONCEPT MOD", LATERALITY, side)],
    );
    let mut children = vec![
        text("HAS OBS CONTEXT", TRACKING_ID, &format!("zone {name}")),
        uid("HAS OBS CONTEXT", TRACKING_UID, &tracking_uid),
        site,
        code("HAS CONCEPT MOD", ZONE, zone_code),
        text("HAS CONCEPT MOD", ALGORITHM_NAME, "Pleura LusNet"),
        text("HAS CONCEPT MOD", ALGORITHM_VERSION, &exam.model),
        code(
            "HAS CONCEPT MOD",
            RECORDED_BY,
            if score.manual { BUTTON } else { STABLE },
        ),
    ];
    if let Some(findings) = score.findings {
        for ((finding, _), &p) in FINDING_CODES.iter().zip(&findings) {
            if p >= FINDING_THRESHOLD {
                children.push(code("CONTAINS", FINDING, *finding));
            }
        }
    }
    children.push(score_item);
    children.push(num(
        "CONTAINS",
        CONFIDENCE,
        f64::from(score.confidence),
        3,
        NO_UNITS,
    ));
    if let Some(findings) = score.findings {
        for ((_, probability), &p) in FINDING_CODES.iter().zip(&findings) {
            children.push(num("CONTAINS", *probability, f64::from(p), 3, NO_UNITS));
        }
    }
    container("CONTAINS", GROUP, children)
}

/// The exam's total, with its protocol.
fn total_group(exam: &ExamFacts) -> Object {
    let protocol = match exam.protocol {
        crate::exam::Protocol::Zones12 => ZONES_12,
        crate::exam::Protocol::Zones14 => ZONES_14,
        crate::exam::Protocol::Blue6 => BLUE,
    };
    let recorded = exam.zones.iter().flatten().count();
    container(
        "CONTAINS",
        GROUP,
        vec![
            text("HAS OBS CONTEXT", TRACKING_ID, "exam total"),
            uid(
                "HAS OBS CONTEXT",
                TRACKING_UID,
                &format!("{}.4.0", exam.identity.uid_root),
            ),
            code("HAS CONCEPT MOD", PROTOCOL, protocol),
            num("CONTAINS", TOTAL, f64::from(exam.total()), 0, SCORE_UNIT),
            num(
                "CONTAINS",
                MAX_TOTAL,
                f64::from(3 * exam.zones.len() as u32),
                0,
                SCORE_UNIT,
            ),
            num("CONTAINS", ZONES_RECORDED, recorded as f64, 0, NO_UNITS),
        ],
    )
}
