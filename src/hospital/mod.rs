//! Results reach the hospital: a finished exam as the DICOM objects a PACS
//! stores and the HL7 message an electronic record takes.
//!
//! A finished exam in the journal, with the zone clips saved beside it
//! ([`crate::exam::ZoneClips`]), is all it takes: [`ExamObjects::build`]
//! makes, from those alone,
//!
//! - one **US Multi-frame** clip per recorded zone (the frames it was
//!   scored on, with their frame time),
//! - one **Secondary Capture** of the bedside summary screen,
//! - one **Comprehensive SR** following TID 1500, with a measurement group
//!   per zone (`report.rs`),
//! - one **HL7 v2.5 ORU^R01** with an OBX per zone and one for the total
//!   ([`hl7`]).
//!
//! Every UID comes from the exam's journaled identity
//! ([`crate::exam::ExamIdentity`]), so building them again, after a
//! restart or for a re-send, gives the same instances.

mod dicom;
pub mod hl7;
pub mod mllp;
pub mod net;
pub mod outbox;
mod report;
pub mod worklist;

pub use hl7::{Acknowledgement, Hl7Message, parse_acknowledgement};
pub use report::{PLEURA_CODES, PLEURA_SCHEME};

use crate::atomic_write::{Durability, write_atomically};
use crate::board::BoardProfile;
use crate::display::{Canvas, ScreenKind, ScreenPainter, ScreenState};
use crate::exam::{ClipError, Exam, ExamIdentity, Protocol, SeriesKind, ZoneClips, ZoneScore};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Why an exam's objects could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum HospitalError {
    /// The exam is still being recorded.
    #[error("the exam is not finished: finish it before sending it")]
    NotFinished,
    /// The exam was journaled before exams had identities and UIDs.
    #[error(
        "the exam has no identity or UIDs (journaled by an earlier version): it cannot be sent \
         without making new UIDs, which would duplicate it if it was ever sent"
    )]
    NoIdentity,
    /// A zone's saved clip could not be read.
    #[error(transparent)]
    Clip(#[from] ClipError),
    /// dicom-rs refused to make or encode an object.
    #[error("DICOM object {name}: {reason}")]
    Dicom {
        /// The object.
        name: String,
        /// What dicom-rs said.
        reason: String,
    },
    /// A file could not be written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        cause: std::io::Error,
    },
}

/// This unit, as the hospital sees it in every object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    /// The unit's DICOM AE title (at most 16 characters).
    pub ae_title: String,
    /// The board profile's name (the equipment's model name).
    pub board: String,
    /// Pleura's version.
    pub software: String,
    /// The model file the scores come from, for exams whose journal does
    /// not say.
    pub model: String,
    /// The institution, when the profile names one.
    pub institution: Option<String>,
    /// The summary screen's size, as the bedside screen draws it.
    pub screen: (u32, u32),
}

impl Station {
    /// The unit of `board`, with the AE title `station_ae` when given (else
    /// the profile's `[hospital] station_ae`), scoring with `model`.
    pub fn for_board(board: &BoardProfile, station_ae: Option<&str>, model: &Path) -> Self {
        Self {
            ae_title: station_ae.map_or_else(|| board.hospital.station_ae.clone(), str::to_string),
            board: board.name.clone(),
            software: env!("CARGO_PKG_VERSION").to_string(),
            model: model
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            institution: board.hospital.institution.clone(),
            screen: (board.display.size[0], board.display.size[1]),
        }
    }

    /// The unit's device UID in reports: a `2.25` UID from its AE title and
    /// board, the same on every exam of the unit.
    pub fn device_uid(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.ae_title, self.board));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        format!("2.25.{}", u128::from_be_bytes(bytes))
    }
}

/// A finished exam with its identity: what every object is made from.
#[derive(Debug, Clone)]
pub(crate) struct ExamFacts {
    pub(crate) identity: ExamIdentity,
    pub(crate) protocol: Protocol,
    pub(crate) zones: Vec<Option<ZoneScore>>,
    pub(crate) started_at: u64,
    pub(crate) finished_at: u64,
    /// The model file that scored it: the journal's, else the station's.
    pub(crate) model: String,
    exam: Exam,
}

impl ExamFacts {
    fn of(exam: &Exam, station_model: &str) -> Result<Self, HospitalError> {
        let finished_at = exam
            .finished_at
            .filter(|_| exam.finished)
            .ok_or(HospitalError::NotFinished)?;
        let identity = exam.identity.clone().ok_or(HospitalError::NoIdentity)?;
        Ok(Self {
            identity,
            protocol: exam.protocol,
            zones: exam.zones.clone(),
            started_at: exam.started_at,
            finished_at,
            model: exam
                .model
                .clone()
                .unwrap_or_else(|| station_model.to_string()),
            exam: exam.clone(),
        })
    }

    /// The name of zone `zone` in the protocol.
    pub(crate) fn zone_name(&self, zone: usize) -> &'static str {
        self.protocol.zones().get(zone).copied().unwrap_or("?")
    }

    /// The zone's side: `R` or `L`.
    pub(crate) fn laterality(&self, zone: usize) -> &'static str {
        if self.zone_name(zone).starts_with('R') {
            "R"
        } else {
            "L"
        }
    }

    /// The sum of the recorded zones.
    pub(crate) fn total(&self) -> u32 {
        self.exam.total()
    }
}

/// One DICOM object of an exam, ready to write or send.
pub struct DicomInstance {
    /// A file name for it: `zone-R1.dcm`, `summary.dcm`, `report.dcm`.
    pub file_name: String,
    /// Its SOP class UID.
    pub sop_class: String,
    /// Its SOP instance UID.
    pub sop_instance: String,
    object: dicom_object::FileDicomObject<dicom::Object>,
}

impl DicomInstance {
    /// The object as a DICOM Part 10 file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, HospitalError> {
        let mut bytes = Vec::new();
        self.object
            .write_all(&mut bytes)
            .map_err(|e| HospitalError::Dicom {
                name: self.file_name.clone(),
                reason: e.to_string(),
            })?;
        Ok(bytes)
    }

    /// The data set alone (no file meta group), in the transfer syntax
    /// `transfer_syntax`, as C-STORE sends it.
    pub fn data_set(&self, transfer_syntax: &str) -> Result<Vec<u8>, HospitalError> {
        use dicom_encoding::TransferSyntaxIndex;
        let dicom = |reason: String| HospitalError::Dicom {
            name: self.file_name.clone(),
            reason,
        };
        let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
            .get(transfer_syntax)
            .ok_or_else(|| dicom(format!("unknown transfer syntax {transfer_syntax}")))?;
        let mut bytes = Vec::new();
        self.object
            .write_dataset_with_ts(&mut bytes, syntax)
            .map_err(|e| dicom(e.to_string()))?;
        Ok(bytes)
    }
}

/// Everything a finished exam sends.
pub struct ExamObjects {
    /// The clips, the summary capture and the report, in that order.
    pub dicom: Vec<DicomInstance>,
    /// The result message.
    pub hl7: Hl7Message,
    /// Recorded zones whose clip was not saved (a full disk when they were
    /// recorded): their scores are in the report, without a clip.
    pub zones_without_clip: Vec<&'static str>,
}

impl ExamObjects {
    /// Makes the objects of the finished `exam`, reading its zones' clips
    /// from `clips`, as sent by `station` to the HL7 `receiver`
    /// (application, facility).
    pub fn build(
        exam: &Exam,
        clips: &ZoneClips,
        station: &Station,
        receiver: (&str, &str),
    ) -> Result<Self, HospitalError> {
        let facts = ExamFacts::of(exam, &station.model)?;
        let identity = &facts.identity;
        let into_file = |object, name: &str| {
            dicom::into_file(object, station).map_err(|e| HospitalError::Dicom {
                name: name.to_string(),
                reason: e.to_string(),
            })
        };
        let mut dicom = Vec::new();
        let mut clip_uids = Vec::new();
        let mut zones_without_clip = Vec::new();
        for (zone, _) in facts
            .zones
            .iter()
            .enumerate()
            .filter(|(_, score)| score.is_some())
        {
            let name = facts.zone_name(zone);
            let Some(clip) = clips.load(&identity.uid_root, zone)? else {
                zones_without_clip.push(name);
                continue;
            };
            let number = zone as u32 + 1;
            let file_name = format!("zone-{name}.dcm");
            let object = dicom::zone_clip(&facts, station, zone, number, &clip);
            let sop_instance = identity.instance_uid(SeriesKind::Clips, number);
            clip_uids.push((zone, sop_instance.clone()));
            dicom.push(DicomInstance {
                object: into_file(object, &file_name)?,
                file_name,
                sop_class: dicom::US_MULTIFRAME.to_string(),
                sop_instance,
            });
        }
        let (width, height, rgb) = summary_screen(&facts, station.screen);
        let summary_uid = identity.instance_uid(SeriesKind::Summary, 1);
        dicom.push(DicomInstance {
            object: into_file(
                dicom::summary_capture(&facts, station, width, height, rgb),
                "summary.dcm",
            )?,
            file_name: "summary.dcm".into(),
            sop_class: dicom::SECONDARY_CAPTURE.to_string(),
            sop_instance: summary_uid.clone(),
        });
        let evidence = report::Evidence {
            clips: &clip_uids,
            summary: &summary_uid,
        };
        dicom.push(DicomInstance {
            object: into_file(
                report::structured_report(&facts, station, &evidence),
                "report.dcm",
            )?,
            file_name: "report.dcm".into(),
            sop_class: dicom::COMPREHENSIVE_SR.to_string(),
            sop_instance: identity.instance_uid(SeriesKind::Report, 1),
        });
        Ok(Self {
            dicom,
            hl7: hl7::result_message(&facts, &station.ae_title, receiver),
            zones_without_clip,
        })
    }

    /// Writes every DICOM object as `DIR/NAME.dcm` and the HL7 message as
    /// `DIR/result.hl7`, each atomically; returns the files written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, HospitalError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| HospitalError::Io { path, cause }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut written = Vec::new();
        for instance in &self.dicom {
            let path = dir.join(&instance.file_name);
            let bytes = instance.to_bytes()?;
            write_atomically(&path, Durability::Synced, |out| {
                std::io::Write::write_all(out, &bytes)
            })
            .map_err(io(&path))?;
            written.push(path);
        }
        let path = dir.join("result.hl7");
        write_atomically(&path, Durability::Synced, |out| {
            std::io::Write::write_all(out, self.hl7.text.as_bytes())
        })
        .map_err(io(&path))?;
        written.push(path);
        Ok(written)
    }
}

/// The bedside summary screen of the exam, drawn as the unit's screen draws
/// it: (width, height, RGB pixels).
fn summary_screen(facts: &ExamFacts, (width, height): (u32, u32)) -> (usize, usize, Vec<u8>) {
    let mut canvas = Canvas::new(width, height);
    let state = ScreenState {
        kind: ScreenKind::Summary,
        ..ScreenState::default()
    };
    ScreenPainter::new().draw(&mut canvas, &state, Some(&facts.exam), &[]);
    (width as usize, height as usize, canvas.0.into_raw())
}
