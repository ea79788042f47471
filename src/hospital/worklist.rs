//! The Modality Worklist: who is scheduled for this unit today, asked of
//! the hospital's worklist server by C-FIND when an exam starts.
//!
//! The query asks for ultrasound procedure steps scheduled for this
//! station's AE title today (PS3.4 K.6.1), and returns for each the
//! patient, the accession number and the study UID. The bedside never
//! waits on it: the query runs on its own thread ([`WorklistClient`]), and a
//! worklist that cannot be reached, or does not answer in time, leaves the
//! exam anonymous ([`crate::exam::Session`]).

use super::net::{Link, NetError, associate, response, send_message};
use crate::exam::{Patient, Scheduled, is_uid};
use crate::spec::AeAddress;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use std::time::Duration;

/// The most scheduled exams read from one query.
pub const MAX_ENTRIES: usize = 200;

/// The C-FIND identifier: the keys to match (modality US, this station,
/// today) and the attributes to return (empty).
fn identifier(station_ae: &str, date: &str) -> InMemDicomObject {
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let step = InMemDicomObject::from_element_iter([
        text(tags::MODALITY, VR::CS, "US"),
        text(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, station_ae),
        text(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, date),
        text(tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
        text(tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, ""),
    ]);
    let mut object = InMemDicomObject::from_element_iter([
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        text(tags::PATIENT_NAME, VR::PN, ""),
        text(tags::PATIENT_ID, VR::LO, ""),
        text(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
        text(tags::PATIENT_SEX, VR::CS, ""),
        text(tags::ACCESSION_NUMBER, VR::SH, ""),
        text(tags::STUDY_INSTANCE_UID, VR::UI, ""),
        text(tags::REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, ""),
    ]);
    object.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![step]),
    ));
    object
}

/// A text attribute of an answer, trimmed; empty when absent.
fn text(object: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches([' ', '\0']).to_string())
        .unwrap_or_default()
}

/// Reads one worklist answer; `None` for an entry that cannot start an
/// exam (no patient ID, or a study UID that is not one).
fn scheduled(answer: &InMemDicomObject) -> Option<Scheduled> {
    let id = text(answer, tags::PATIENT_ID);
    let study_uid = text(answer, tags::STUDY_INSTANCE_UID);
    if id.is_empty() || !is_uid(&study_uid) {
        return None;
    }
    let optional = |value: String| (!value.is_empty()).then_some(value);
    let step = answer
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .ok()
        .and_then(|e| e.items().and_then(|items| items.first().cloned()));
    let mut description = text(answer, tags::REQUESTED_PROCEDURE_DESCRIPTION);
    let mut time = String::new();
    if let Some(step) = &step {
        if description.is_empty() {
            description = text(step, tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION);
        }
        time = text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME);
    }
    let entry = Scheduled {
        patient: Patient {
            name: text(answer, tags::PATIENT_NAME),
            id,
            birth_date: optional(text(answer, tags::PATIENT_BIRTH_DATE))
                .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())),
            sex: optional(text(answer, tags::PATIENT_SEX))
                .filter(|s| matches!(s.as_str(), "M" | "F" | "O")),
        },
        accession: text(answer, tags::ACCESSION_NUMBER),
        study_uid,
        description,
        time,
    };
    // An entry whose identity DICOM cannot hold would not journal.
    match entry.identity().check() {
        Ok(()) => Some(entry),
        Err(e) => {
            log::warn!(
                "worklist entry of patient {} left out: {e}",
                entry.patient.id
            );
            None
        }
    }
}

/// Today's date, `YYYYMMDD` (UTC, as the unit keeps time).
pub fn today() -> String {
    super::dicom::date_time(crate::exam::unix_now()).0
}

/// Asks `peer` for the ultrasound exams scheduled on `station_ae` on `date`
/// (`YYYYMMDD`), waiting at most `timeout` at each step.
pub fn query(
    station_ae: &str,
    peer: &AeAddress,
    date: &str,
    timeout: Duration,
    link: &Link,
) -> Result<Vec<Scheduled>, NetError> {
    let class = uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND;
    let mut association = associate(station_ae, peer, &[class], timeout, link)?;
    let context = association
        .contexts()
        .first()
        .cloned()
        .ok_or_else(|| NetError::NoContext {
            peer: peer.to_string(),
            sop_class: class.into(),
        })?;
    let mut data = Vec::new();
    let syntax = super::net::transfer_syntax(&context.transfer_syntax, peer)?;
    identifier(station_ae, date)
        .write_dataset_with_ts(&mut data, syntax)
        .map_err(|e| NetError::Protocol {
            peer: peer.to_string(),
            reason: format!("cannot encode the query: {e}"),
        })?;
    let command = super::net::command(0x0020, 1, class, None, true);
    send_message(
        association.as_mut(),
        context.id,
        &command,
        Some(&data),
        peer,
    )?;
    let mut found = Vec::new();
    loop {
        let (status, answer) = response(association.as_mut(), peer, syntax)?;
        match status {
            0xFF00 | 0xFF01 => {
                if let Some(entry) = answer.as_ref().and_then(scheduled)
                    && found.len() < MAX_ENTRIES
                {
                    found.push(entry);
                }
            }
            0x0000 => break,
            other => {
                association.abort();
                return Err(NetError::Protocol {
                    peer: peer.to_string(),
                    reason: format!("the worklist query failed with status {other:04X}H"),
                });
            }
        }
    }
    association.release();
    Ok(found)
}

/// How long the bedside waits for the worklist at each step before the
/// exam starts anonymous.
pub const WORKLIST_TIMEOUT: Duration = Duration::from_secs(5);

/// The worklist as the bedside session asks it: each request runs one query
/// on its own thread, and its answer is polled for.
pub struct WorklistClient {
    station_ae: String,
    peer: AeAddress,
    timeout: Duration,
    link: Link,
    answer: Option<crossbeam_channel::Receiver<Result<Vec<Scheduled>, String>>>,
}

impl WorklistClient {
    /// Queries `peer` as `station_ae` over `link`, waiting at most
    /// `timeout` at each step.
    pub fn new(station_ae: String, peer: AeAddress, timeout: Duration, link: Link) -> Self {
        Self {
            station_ae,
            peer,
            timeout,
            link,
            answer: None,
        }
    }
}

impl crate::exam::WorklistQuery for WorklistClient {
    fn request(&mut self) {
        let (tell, answer) = crossbeam_channel::bounded(1);
        let (station, peer, timeout, link) = (
            self.station_ae.clone(),
            self.peer.clone(),
            self.timeout,
            self.link.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("worklist".into())
            .spawn(move || {
                let found =
                    query(&station, &peer, &today(), timeout, &link).map_err(|e| e.to_string());
                let _ = tell.send(found);
            });
        self.answer = Some(answer);
        if let Err(e) = spawned {
            let (tell, answer) = crossbeam_channel::bounded(1);
            let _ = tell.send(Err(format!("cannot start the worklist query: {e}")));
            self.answer = Some(answer);
        }
    }

    fn poll(&mut self) -> Option<Result<Vec<Scheduled>, String>> {
        let answer = self.answer.as_ref()?.try_recv().ok()?;
        self.answer = None;
        Some(answer)
    }
}
