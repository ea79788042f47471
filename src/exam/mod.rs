//! The bedside exam: zones, their recorded scores, and a journal that
//! survives crashes.
//!
//! A lung-ultrasound exam walks a protocol of chest zones (12 or 14 zones,
//! or BLUE's 6 points). For each zone the clinician holds the probe until
//! the zone's clip score is stable; it is then recorded (or recorded at once
//! on a button press). The exam total, the LUS score, is the sum of the
//! recorded zone scores. A [`Session`] runs this at the bedside: it sees
//! every scored frame and every command, and decides when a zone is
//! recorded.
//!
//! Every change is appended to a [`Journal`] as one JSON line and fsynced
//! before the screen shows it, so a crash or a power cut at any moment
//! loses nothing that was shown as recorded. [`Journal::open`] replays the
//! lines to recover the exam; a torn last line (the write that the power
//! cut interrupted) is ignored and reported.
//!
//! Replaying never believes an event that cannot have happened: every line
//! must be an event Pleura writes ([`JournalEntry`]), with a Soldati score
//! 0–3, a zone of the exam's protocol, a confidence 0–1 and a `finished`
//! total that is the sum of the zones, after a `started` and not after a
//! `finished`. Such a line is refused by its number, wherever it is: only
//! a last line that is not whole JSON is taken for a torn write. The same
//! check runs before an entry is appended. Reading is bounded: a journal is
//! a regular file of at most [`MAX_JOURNAL_BYTES`] with lines of at most
//! [`MAX_LINE_BYTES`], and a journal past [`ARCHIVE_AT_BYTES`] is set aside
//! when the next exam starts, so that a unit never reaches the limit.

mod clips;
mod identity;
mod session;

pub use clips::{ClipError, MAX_CLIP_BYTES, MAX_CLIP_FRAMES, ZoneClip, ZoneClips};
pub(crate) use identity::is_uid;
pub use identity::{ExamIdentity, IdentityError, Patient, Scheduled, SeriesKind};
pub use session::{
    ExamSink, Handover, MIN_ZONE_HOLD, OutboxCounts, Picking, Session, WorklistQuery, ZoneProgress,
};

use crate::spec::{Named, SpecError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The longest journal line read. The longest line Pleura writes is a
/// `started` with the longest patient identity DICOM holds, about 1 500
/// bytes; a `recorded` line is about 200. A torn line is a part of one.
pub const MAX_LINE_BYTES: usize = 2048;
/// The largest journal read: 64 MiB. One exam writes some 2 to 60 lines
/// (zones recorded, redone and recorded again), under 8 KiB; the journal is
/// archived at [`ARCHIVE_AT_BYTES`], so only a file that is not a unit's
/// journal gets here.
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;
/// When a new exam starts and the journal has reached 8 MiB (1 000 exams
/// or more), it is renamed to `NAME-TIME.jsonl` beside it and a fresh journal
/// begins: the unit's journal stays far below [`MAX_JOURNAL_BYTES`], and
/// older exams are kept.
pub const ARCHIVE_AT_BYTES: u64 = 8 * 1024 * 1024;

/// A scanning protocol: which zones an exam visits, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// 12 zones: 6 per side (anterior, lateral, posterior; upper and lower).
    Zones12,
    /// 14 zones (Soldati et al. 2020): 3 posterior, 2 lateral and 2
    /// anterior per side.
    Zones14,
    /// BLUE protocol: upper and lower BLUE point and PLAPS point per side.
    Blue6,
}

impl Protocol {
    /// The zone names, right side first, in scanning order.
    pub fn zones(self) -> &'static [&'static str] {
        match self {
            Protocol::Zones12 => &[
                "R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5", "L6",
            ],
            Protocol::Zones14 => &[
                "R1", "R2", "R3", "R4", "R5", "R6", "R7", "L1", "L2", "L3", "L4", "L5", "L6", "L7",
            ],
            Protocol::Blue6 => &["R-up", "R-low", "R-PLAPS", "L-up", "L-low", "L-PLAPS"],
        }
    }

    /// Zones per side (the zone map draws one column per side).
    pub fn per_side(self) -> usize {
        self.zones().len() / 2
    }

    /// The protocol's name in messages: `12-zone`, `14-zone` or `BLUE`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Zones12 => "12-zone",
            Protocol::Zones14 => "14-zone",
            Protocol::Blue6 => "BLUE",
        }
    }
}

impl Named for Protocol {
    const WHAT: &'static str = "exam protocol";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("12", Protocol::Zones12),
        ("14", Protocol::Zones14),
        ("blue", Protocol::Blue6),
        ("zones12", Protocol::Zones12),
        ("zones14", Protocol::Zones14),
        ("blue6", Protocol::Blue6),
    ];
}

impl std::str::FromStr for Protocol {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

/// Why the exam or its journal failed.
#[derive(Debug, thiserror::Error)]
pub enum ExamError {
    /// The journal could not be read or written.
    #[error("exam journal {path}: {cause}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What went wrong.
        cause: std::io::Error,
    },
    /// A journal line that is not the last one does not parse: the file was
    /// damaged, not just cut short.
    #[error("exam journal {path}, line {line}: {cause}")]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        cause: serde_json::Error,
    },
    /// A whole line that is not an event that can have happened there.
    #[error("exam journal {path}, line {line}: {reason}")]
    Impossible {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What cannot be.
        reason: ImpossibleEvent,
    },
    /// An entry that cannot happen was not written.
    #[error("exam journal {path}: not written: {reason}")]
    Refused {
        /// The journal file.
        path: PathBuf,
        /// What cannot be.
        reason: ImpossibleEvent,
    },
    /// A line longer than any event: not a journal, or a damaged one.
    #[error(
        "exam journal {path}, line {line}: longer than {MAX_LINE_BYTES} bytes, which no exam \
         event is"
    )]
    LineTooLong {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A journal larger than any unit's: not read.
    #[error(
        "exam journal {path}: {size} bytes, more than the {max} MiB a journal may hold",
        max = MAX_JOURNAL_BYTES / (1024 * 1024)
    )]
    TooLarge {
        /// The journal file.
        path: PathBuf,
        /// Its size (at least the part read).
        size: u64,
    },
    /// The path is a device, a pipe or a folder, not a journal file.
    #[error("exam journal {path}: {kind}, not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
}

/// Why a journal event cannot have happened.
#[derive(Debug, thiserror::Error)]
pub enum ImpossibleEvent {
    /// Whole JSON, but not an event Pleura writes (an unknown event or
    /// protocol, a missing field, a number out of its type).
    #[error("not an exam event: {0}")]
    NotAnEvent(serde_json::Error),
    /// A score outside 0–3.
    #[error("score {0} is not a Soldati score (0–3)")]
    Score(u8),
    /// A zone past the protocol's zones.
    #[error("zone {zone} is not a zone of the {protocol} protocol (0 to {last})", protocol = .protocol.name(), last = .protocol.zones().len() - 1)]
    Zone {
        /// The zone index.
        zone: usize,
        /// The exam's protocol.
        protocol: Protocol,
    },
    /// A confidence that is no probability.
    #[error("confidence {0} is not a probability (0 to 1)")]
    Confidence(f32),
    /// An event before any `started`.
    #[error("a '{0}' event before the exam was started")]
    BeforeStarted(&'static str),
    /// An event after `finished` and before the next `started`.
    #[error("a '{0}' event after the exam was finished")]
    AfterFinished(&'static str),
    /// A finding probability outside 0–1.
    #[error("finding probability {0} is not a probability (0 to 1)")]
    Finding(f32),
    /// A patient identity or UID that DICOM cannot hold.
    #[error("{0}")]
    Identity(IdentityError),
    /// A `finished` total that is not the sum of the recorded zones.
    #[error("total {written} is not the sum of the recorded zones ({sum})")]
    Total {
        /// The total written.
        written: u32,
        /// The sum of the zones recorded before it.
        sum: u32,
    },
}

/// A recorded zone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZoneScore {
    /// Soldati score 0–3.
    pub score: u8,
    /// Mean probability of that score over the zone's frames.
    pub confidence: f32,
    /// Whether it was recorded by a button press rather than by stability.
    pub manual: bool,
    /// The zone's finding probabilities ([`crate::model::heads::FINDINGS`] order),
    /// for a model with the finding heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<[f32; FINDINGS]>,
}

/// How many findings a zone records ([`crate::model::heads::FINDINGS`]).
const FINDINGS: usize = crate::model::heads::FINDINGS.len();

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEntry {
    /// A new exam; any earlier exam in the journal is closed.
    Started {
        /// The protocol.
        protocol: Protocol,
        /// Seconds since the Unix epoch.
        time: u64,
        /// Whose exam it is and its UIDs (absent in journals written before
        /// exams had identities).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<ExamIdentity>,
        /// The model file that scores it (absent in older journals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
    /// A zone's score was recorded (or re-recorded after a redo).
    Recorded {
        /// Index into [`Protocol::zones`].
        zone: usize,
        /// What was recorded.
        #[serde(flatten)]
        result: ZoneScore,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// A zone's score was cleared to be scanned again.
    Cleared {
        /// Index into [`Protocol::zones`].
        zone: usize,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// The exam was finished.
    Finished {
        /// The total LUS score of the recorded zones.
        total: u32,
        /// Seconds since the Unix epoch.
        time: u64,
    },
}

/// What the clinician asks for, from a key, a button or the touchscreen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a new exam (finishing nothing: the old one stays in the journal).
    Start,
    /// Record the current zone now, without waiting for stability.
    Record,
    /// Freeze or unfreeze the picture.
    ToggleFreeze,
    /// Go to the next zone.
    NextZone,
    /// Go to the previous zone.
    PreviousZone,
    /// Go to this zone (a tap on the zone map).
    SelectZone(usize),
    /// Pick this row of the worklist (a tap on it).
    Choose(usize),
    /// Clear the current zone's score to scan it again.
    Redo,
    /// Finish the exam and show the summary.
    Finish,
}

/// The state of one exam, rebuilt from its journal entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exam {
    /// The protocol.
    pub protocol: Protocol,
    /// Recorded scores, one slot per zone.
    pub zones: Vec<Option<ZoneScore>>,
    /// The zone being scanned.
    pub current: usize,
    /// Whether the exam was finished.
    pub finished: bool,
    /// Whose exam it is and its UIDs (`None` for an exam journaled before
    /// exams had identities).
    pub identity: Option<ExamIdentity>,
    /// When it started, seconds since the Unix epoch.
    pub started_at: u64,
    /// The model file that scored it, when the journal says.
    pub model: Option<String>,
    /// When it was finished, seconds since the Unix epoch.
    pub finished_at: Option<u64>,
}

impl Exam {
    /// A new exam with no zone recorded, started at `started_at`.
    pub fn new(protocol: Protocol, identity: Option<ExamIdentity>, started_at: u64) -> Self {
        Self {
            protocol,
            zones: vec![None; protocol.zones().len()],
            current: 0,
            finished: false,
            identity,
            started_at,
            model: None,
            finished_at: None,
        }
    }

    /// The LUS score: the sum of the recorded zones.
    pub fn total(&self) -> u32 {
        self.zones
            .iter()
            .flatten()
            .map(|z| u32::from(z.score))
            .sum()
    }

    /// The highest total the protocol allows (3 per zone).
    pub fn max_total(&self) -> u32 {
        3 * self.zones.len() as u32
    }

    /// How many zones have a score.
    pub fn recorded(&self) -> usize {
        self.zones.iter().flatten().count()
    }

    /// The name of the current zone.
    pub fn current_name(&self) -> &'static str {
        self.protocol.zones()[self.current]
    }

    /// Applies a journal entry (when recording, or when replaying).
    fn apply(&mut self, entry: &JournalEntry) {
        match *entry {
            JournalEntry::Started {
                protocol,
                time,
                ref identity,
                ref model,
            } => {
                *self = Exam::new(protocol, identity.clone(), time);
                self.model = model.clone();
            }
            JournalEntry::Recorded { zone, result, .. } => {
                if let Some(slot) = self.zones.get_mut(zone) {
                    *slot = Some(result);
                    self.current = zone;
                }
            }
            JournalEntry::Cleared { zone, .. } => {
                if let Some(slot) = self.zones.get_mut(zone) {
                    *slot = None;
                    self.current = zone;
                }
            }
            JournalEntry::Finished { time, .. } => {
                self.finished = true;
                self.finished_at = Some(time);
            }
        }
    }
}

impl JournalEntry {
    /// The event's name in the journal.
    pub fn event(&self) -> &'static str {
        match self {
            JournalEntry::Started { .. } => "started",
            JournalEntry::Recorded { .. } => "recorded",
            JournalEntry::Cleared { .. } => "cleared",
            JournalEntry::Finished { .. } => "finished",
        }
    }

    /// Whether this entry can come next after `exam` (the exam the journal
    /// holds so far, if any): the rule for replaying and for appending.
    pub fn check(&self, exam: Option<&Exam>) -> Result<(), ImpossibleEvent> {
        let exam = match (self, exam) {
            (JournalEntry::Started { identity, .. }, _) => {
                return match identity {
                    Some(identity) => identity.check().map_err(ImpossibleEvent::Identity),
                    None => Ok(()),
                };
            }
            (_, None) => return Err(ImpossibleEvent::BeforeStarted(self.event())),
            (_, Some(exam)) if exam.finished => {
                return Err(ImpossibleEvent::AfterFinished(self.event()));
            }
            (_, Some(exam)) => exam,
        };
        let zone_of = |zone: usize| {
            if zone < exam.zones.len() {
                Ok(())
            } else {
                Err(ImpossibleEvent::Zone {
                    zone,
                    protocol: exam.protocol,
                })
            }
        };
        match *self {
            JournalEntry::Started { .. } => Ok(()),
            JournalEntry::Recorded { zone, result, .. } => {
                zone_of(zone)?;
                if usize::from(result.score) >= crate::model::SCORE_CLASSES {
                    return Err(ImpossibleEvent::Score(result.score));
                }
                if !(0.0..=1.0).contains(&result.confidence) {
                    return Err(ImpossibleEvent::Confidence(result.confidence));
                }
                match result
                    .findings
                    .iter()
                    .flatten()
                    .find(|p| !(0.0..=1.0).contains(*p))
                {
                    Some(&p) => Err(ImpossibleEvent::Finding(p)),
                    None => Ok(()),
                }
            }
            JournalEntry::Cleared { zone, .. } => zone_of(zone),
            JournalEntry::Finished { total, .. } if total != exam.total() => {
                Err(ImpossibleEvent::Total {
                    written: total,
                    sum: exam.total(),
                })
            }
            JournalEntry::Finished { .. } => Ok(()),
        }
    }
}

/// Applies a checked entry: a `started` begins a new exam, the others
/// change the current one.
fn apply_to(exam: &mut Option<Exam>, entry: &JournalEntry) {
    match (entry, exam.as_mut()) {
        (JournalEntry::Started { protocol, .. }, _) => {
            let mut started = Exam::new(*protocol, None, 0);
            started.apply(entry);
            *exam = Some(started);
        }
        (_, Some(current)) => current.apply(entry),
        (_, None) => {}
    }
}

/// An append-only, fsynced record of exams.
pub struct Journal {
    path: PathBuf,
    file: File,
    exam: Option<Exam>,
    /// The model file named in each exam it starts.
    model: Option<String>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and recovers the last exam
    /// in it. A torn last line is dropped (and truncated away, so the next
    /// entry starts on a clean line); a bad line anywhere else is an error.
    pub fn open(path: &Path) -> Result<Self, ExamError> {
        let io = |cause| ExamError::Journal {
            path: path.to_path_buf(),
            cause,
        };
        let replayed = replay(path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() > replayed.good_len {
            file.set_len(replayed.good_len).map_err(io)?;
        }
        if !replayed.ends_with_newline {
            // The last event is whole but its newline was lost: end its
            // line, so that the next entry does not run into it.
            file.write_all(b"\n").map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            exam: replayed.exam,
            model: None,
        })
    }

    /// Names `model` (the model file's name) in every exam started from now
    /// on, for the reports to say which model scored it.
    pub fn scored_by(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The exam a journal holds, read without changing the file (a torn
    /// last line is skipped, not cut off).
    pub fn read(path: &Path) -> Result<Option<Exam>, ExamError> {
        replay(path).map(|replayed| replayed.exam)
    }

    /// The exam of `journal` whose UID root is `uid_root`, wherever it is
    /// in the journal, or in a journal set aside from it
    /// (`STEM-TIME.jsonl`, [`ARCHIVE_AT_BYTES`]).
    pub fn find(journal: &Path, uid_root: &str) -> Result<Option<Exam>, ExamError> {
        let stem = journal.file_stem().unwrap_or_default().to_string_lossy();
        let mut candidates = vec![journal.to_path_buf()];
        if let Some(dir) = journal.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let prefix = format!("{stem}-");
            let mut archived: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "jsonl")
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                })
                .collect();
            archived.sort();
            candidates.extend(archived.into_iter().rev());
        }
        for path in candidates {
            let replayed = replay(&path)?;
            let found = replayed
                .earlier
                .into_iter()
                .chain(replayed.exam)
                .find(|exam| {
                    exam.identity
                        .as_ref()
                        .is_some_and(|identity| identity.uid_root == uid_root)
                });
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The exam in progress or last finished, if any.
    pub fn exam(&self) -> Option<&Exam> {
        self.exam.as_ref()
    }

    /// Appends `entry`, fsyncs it, then applies it to the exam. When this
    /// returns `Ok`, the entry survives a power cut. An entry that cannot
    /// happen after the exam so far ([`JournalEntry::check`]) is not
    /// written.
    pub fn append(&mut self, entry: JournalEntry) -> Result<(), ExamError> {
        let io = |cause| ExamError::Journal {
            path: self.path.clone(),
            cause,
        };
        entry
            .check(self.exam.as_ref())
            .map_err(|reason| ExamError::Refused {
                path: self.path.clone(),
                reason,
            })?;
        let mut line = serde_json::to_vec(&entry).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        apply_to(&mut self.exam, &entry);
        Ok(())
    }

    /// Sets the journal aside as `NAME-TIME.jsonl` and begins a fresh one
    /// when it has reached [`ARCHIVE_AT_BYTES`] (called as an exam starts,
    /// so no unfinished exam is left behind).
    fn archive_if_large(&mut self) -> Result<(), ExamError> {
        let io = |cause| ExamError::Journal {
            path: self.path.clone(),
            cause,
        };
        if self.file.metadata().map_err(io)?.len() < ARCHIVE_AT_BYTES {
            return Ok(());
        }
        let stem = self.path.file_stem().unwrap_or_default().to_string_lossy();
        let time = unix_now();
        let archive = (0..)
            .map(|n| {
                let suffix = if n == 0 {
                    String::new()
                } else {
                    format!("-{n}")
                };
                self.path
                    .with_file_name(format!("{stem}-{time}{suffix}.jsonl"))
            })
            .find(|candidate| !candidate.exists())
            .unwrap_or_else(|| self.path.with_extension("old.jsonl"));
        std::fs::rename(&self.path, &archive).map_err(io)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename and the new file survive a power cut.
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        log::info!(
            "exam journal {}: set aside as {} ({} MiB or more); a fresh one begins",
            self.path.display(),
            archive.display(),
            ARCHIVE_AT_BYTES / (1024 * 1024)
        );
        Ok(())
    }

    /// Carries out a clinician's command. `zone_score` is the current
    /// zone's running clip score, if it has seen frames. Returns whether the
    /// exam changed. Freezing is not an exam change and is ignored here.
    pub fn command(
        &mut self,
        command: Command,
        protocol: Protocol,
        zone_score: Option<ZoneScore>,
    ) -> Result<bool, ExamError> {
        let time = unix_now();
        let entry = match (command, self.exam.as_ref()) {
            (Command::Start, _) => {
                return self
                    .start(protocol, ExamIdentity::anonymous(time))
                    .map(|()| true);
            }
            (_, None) => None,
            (_, Some(exam)) if exam.finished => None,
            (Command::Record, Some(exam)) => zone_score.map(|result| JournalEntry::Recorded {
                zone: exam.current,
                result: ZoneScore {
                    manual: true,
                    ..result
                },
                time,
            }),
            (Command::Redo, Some(exam)) => Some(JournalEntry::Cleared {
                zone: exam.current,
                time,
            }),
            (Command::Finish, Some(exam)) => Some(JournalEntry::Finished {
                total: exam.total(),
                time,
            }),
            (Command::NextZone | Command::PreviousZone | Command::SelectZone(_), Some(_)) => {
                return Ok(self.move_to(command));
            }
            (Command::ToggleFreeze | Command::Choose(_), Some(_)) => None,
        };
        match entry {
            Some(entry) => self.append(entry).map(|()| true),
            None => Ok(false),
        }
    }

    /// Starts a new exam of `protocol` for `identity` (any earlier exam in
    /// the journal is closed).
    pub fn start(&mut self, protocol: Protocol, identity: ExamIdentity) -> Result<(), ExamError> {
        self.archive_if_large()?;
        self.append(JournalEntry::Started {
            protocol,
            time: unix_now(),
            identity: Some(identity),
            model: self.model.clone(),
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the current zone because its clip score became stable, if
    /// an exam is running and the zone has no score yet. The zone stays
    /// current: the clinician moves on with [`Command::NextZone`].
    pub fn record_stable(&mut self, result: ZoneScore) -> Result<bool, ExamError> {
        let Some(exam) = self.exam.as_ref().filter(|e| !e.finished) else {
            return Ok(false);
        };
        if exam.zones[exam.current].is_some() {
            return Ok(false);
        }
        let zone = exam.current;
        self.append(JournalEntry::Recorded {
            zone,
            result,
            time: unix_now(),
        })
        .map(|()| true)
    }

    /// Moves to the next, previous or a chosen zone (not journaled: only
    /// recorded scores matter after a restart). Returns whether it moved.
    fn move_to(&mut self, command: Command) -> bool {
        let Some(exam) = self.exam.as_mut() else {
            return false;
        };
        let n = exam.zones.len();
        let target = match command {
            Command::NextZone => (exam.current + 1) % n,
            Command::PreviousZone => (exam.current + n - 1) % n,
            Command::SelectZone(zone) if zone < n => zone,
            _ => return false,
        };
        exam.current = target;
        true
    }
}

/// What replaying a journal found.
struct Replayed {
    /// The last exam in it.
    exam: Option<Exam>,
    /// The exams before it, oldest first.
    earlier: Vec<Exam>,
    /// The length of its intact part: everything but a torn last line.
    good_len: u64,
    /// Whether the intact part ends with a newline (or is empty).
    ends_with_newline: bool,
}

/// Replays a journal: the exam it holds and the length of its intact part.
/// A missing file holds nothing. A last line that is not whole JSON is a
/// torn write and is left out; any other line that is not an event that can
/// happen there is an error that names it.
fn replay(path: &Path) -> Result<Replayed, ExamError> {
    let io = |cause| ExamError::Journal {
        path: path.to_path_buf(),
        cause,
    };
    let mut replayed = Replayed {
        exam: None,
        earlier: Vec::new(),
        good_len: 0,
        ends_with_newline: true,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(replayed),
        Err(e) => return Err(io(e)),
    };
    // Checked before opening: opening a pipe would wait for a writer.
    let regular = |metadata: &std::fs::Metadata| {
        if !metadata.is_file() {
            return Err(ExamError::NotAFile {
                path: path.to_path_buf(),
                kind: crate::file_kind::kind_name(metadata.file_type()),
            });
        }
        if metadata.len() > MAX_JOURNAL_BYTES {
            return Err(ExamError::TooLarge {
                path: path.to_path_buf(),
                size: metadata.len(),
            });
        }
        Ok(())
    };
    regular(&metadata)?;
    let file = File::open(path).map_err(io)?;
    regular(&file.metadata().map_err(io)?)?;
    let mut reader = BufReader::new(file.take(MAX_JOURNAL_BYTES + 1));
    let mut line = Vec::with_capacity(256);
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if read == 0 {
            break;
        }
        let newline = line.last() == Some(&b'\n');
        if newline {
            line.pop();
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(ExamError::LineTooLong {
                path: path.to_path_buf(),
                line: number,
            });
        }
        let is_last = reader.fill_buf().map_err(io)?.is_empty();
        if is_last && reader.get_ref().limit() == 0 {
            return Err(ExamError::TooLarge {
                path: path.to_path_buf(),
                size: MAX_JOURNAL_BYTES + 1,
            });
        }
        if line.is_empty() {
            replayed.good_len += read as u64;
            continue;
        }
        let value = match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(value) => value,
            Err(cause) if is_last => {
                log::warn!(
                    "exam journal {}: ignoring a cut-off last line ({cause})",
                    path.display()
                );
                break;
            }
            Err(cause) => {
                return Err(ExamError::Corrupt {
                    path: path.to_path_buf(),
                    line: number,
                    cause,
                });
            }
        };
        let impossible = |reason| ExamError::Impossible {
            path: path.to_path_buf(),
            line: number,
            reason,
        };
        let entry: JournalEntry = serde_json::from_value(value)
            .map_err(|e| impossible(ImpossibleEvent::NotAnEvent(e)))?;
        entry.check(replayed.exam.as_ref()).map_err(impossible)?;
        if matches!(entry, JournalEntry::Started { .. })
            && let Some(done) = replayed.exam.take()
        {
            replayed.earlier.push(done);
        }
        apply_to(&mut replayed.exam, &entry);
        replayed.good_len += read as u64;
        replayed.ends_with_newline = newline;
    }
    Ok(replayed)
}

/// Seconds since the Unix epoch, now: the time the journal and the
/// outbox keep.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal in a fresh folder, with an exam of `protocol` started.
    fn started(protocol: Protocol) -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.jsonl")).unwrap();
        journal.command(Command::Start, protocol, None).unwrap();
        (dir, journal)
    }

    fn score(score: u8) -> Option<ZoneScore> {
        Some(ZoneScore {
            score,
            confidence: 0.8,
            manual: false,
            findings: None,
        })
    }

    #[test]
    fn recording_keeps_the_zone_next_moves_on_and_the_total_sums() {
        let (_dir, mut journal) = started(Protocol::Blue6);
        journal
            .command(Command::Record, Protocol::Blue6, score(2))
            .unwrap();
        assert_eq!(journal.exam().unwrap().current, 0);
        journal
            .command(Command::NextZone, Protocol::Blue6, None)
            .unwrap();
        journal.record_stable(score(1).unwrap()).unwrap();
        let exam = journal.exam().unwrap();
        assert_eq!(exam.current, 1);
        assert_eq!(exam.total(), 3);
        assert_eq!(exam.zones[0].map(|z| z.manual), Some(true));
        assert_eq!(exam.zones[1].map(|z| z.manual), Some(false));
    }

    #[test]
    fn a_stable_score_does_not_overwrite_a_recorded_zone() {
        let (_dir, mut journal) = started(Protocol::Blue6);
        journal
            .command(Command::Record, Protocol::Blue6, score(3))
            .unwrap();
        assert!(!journal.record_stable(score(0).unwrap()).unwrap());
        assert_eq!(journal.exam().unwrap().zones[0].map(|z| z.score), Some(3));
    }

    #[test]
    fn reopening_recovers_the_exam_and_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal
            .command(Command::Start, Protocol::Zones12, None)
            .unwrap();
        journal
            .command(Command::Record, Protocol::Zones12, score(2))
            .unwrap();
        let before = journal.exam().unwrap().clone();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"event\":\"recorded\",\"zo").unwrap();
        drop(file);

        let mut journal = Journal::open(&path).unwrap();
        assert_eq!(journal.exam(), Some(&before));
        journal
            .command(Command::NextZone, Protocol::Zones12, None)
            .unwrap();
        journal
            .command(Command::Record, Protocol::Zones12, score(1))
            .unwrap();
        drop(journal);
        let journal = Journal::open(&path).unwrap();
        assert_eq!(journal.exam().unwrap().total(), 3);
    }

    #[test]
    fn reading_a_journal_changes_nothing_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal
            .command(Command::Start, Protocol::Blue6, None)
            .unwrap();
        journal
            .command(Command::Record, Protocol::Blue6, score(1))
            .unwrap();
        drop(journal);
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(b"{\"event\":\"reco");
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(Journal::read(&path).unwrap().unwrap().total(), 1);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            torn,
            "the torn line is still there"
        );
        assert_eq!(Journal::read(&dir.path().join("none.jsonl")).unwrap(), None);
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_an_error_that_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(
            &path,
            "{\"event\":\"started\",\"protocol\":\"blue6\",\"time\":1}\nGARBAGE\n{\"event\":\"finished\",\"total\":0,\"time\":2}\n",
        )
        .unwrap();
        let err = Journal::open(&path).err().unwrap().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_zone_can_be_selected_but_not_past_the_protocol() {
        let (_dir, mut journal) = started(Protocol::Blue6);
        assert!(
            journal
                .command(Command::SelectZone(4), Protocol::Blue6, None)
                .unwrap()
        );
        assert!(
            !journal
                .command(Command::SelectZone(6), Protocol::Blue6, None)
                .unwrap()
        );
        assert_eq!(journal.exam().unwrap().current_name(), "L-low");
    }

    #[test]
    fn a_full_disk_is_reported_by_name_and_the_zone_is_not_shown_as_recorded() {
        let (_dir, mut journal) = started(Protocol::Blue6);
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        journal.file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let err = journal
            .command(Command::Record, Protocol::Blue6, score(2))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("j.jsonl") && err.contains("No space left"),
            "{err}"
        );
        assert_eq!(
            journal.exam().unwrap().recorded(),
            0,
            "nothing recorded that is not saved"
        );
    }

    #[test]
    fn protocols_have_their_zone_counts() {
        assert_eq!("12".parse::<Protocol>().unwrap().zones().len(), 12);
        assert_eq!("14".parse::<Protocol>().unwrap().zones().len(), 14);
        assert_eq!("blue".parse::<Protocol>().unwrap().per_side(), 3);
        assert!("13".parse::<Protocol>().is_err());
    }

    const STARTED: &str = r#"{"event":"started","protocol":"blue6","time":1}"#;
    const RECORDED: &str =
        r#"{"event":"recorded","zone":1,"score":2,"confidence":0.8,"manual":false,"time":2}"#;

    /// `lines` joined into a journal (each with its newline), then read.
    fn read_lines(lines: &[&str]) -> Result<Option<Exam>, ExamError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exam.jsonl");
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        Journal::read(&path)
    }

    #[test]
    fn an_event_that_cannot_have_happened_is_refused_by_its_line_wherever_it_is() {
        let recorded = |zone: &str, score: &str, confidence: &str| {
            format!(
                r#"{{"event":"recorded","zone":{zone},"score":{score},"confidence":{confidence},"manual":true,"time":2}}"#
            )
        };
        let finished = |total: u32| format!(r#"{{"event":"finished","total":{total},"time":3}}"#);
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                vec![recorded("0", "9", "0.8")],
                "score 9 is not a Soldati score (0–3)",
            ),
            (
                vec![recorded("0", "4", "0.8")],
                "score 4 is not a Soldati score",
            ),
            (vec![recorded("0", "300", "0.8")], "not an exam event"),
            (vec![recorded("0", "-1", "0.8")], "not an exam event"),
            (
                vec![recorded("99", "2", "0.8")],
                "zone 99 is not a zone of the BLUE protocol (0 to 5)",
            ),
            (
                vec![recorded("6", "2", "0.8")],
                "zone 6 is not a zone of the BLUE",
            ),
            (
                vec![r#"{"event":"cleared","zone":6,"time":2}"#.into()],
                "zone 6 is not a zone of the BLUE",
            ),
            (
                vec![recorded("0", "2", "1.5")],
                "confidence 1.5 is not a probability",
            ),
            (
                vec![recorded("0", "2", "-0.1")],
                "confidence -0.1 is not a probability",
            ),
            (
                vec![finished(40)],
                "total 40 is not the sum of the recorded zones (0)",
            ),
            (
                vec![recorded("0", "2", "0.8"), finished(3)],
                "total 3 is not the sum of the recorded zones (2)",
            ),
            (
                vec![finished(0), recorded("0", "2", "0.8")],
                "a 'recorded' event after the exam was finished",
            ),
            (
                vec![finished(0), finished(0)],
                "a 'finished' event after the exam was finished",
            ),
            (
                vec![r#"{"event":"started","protocol":"zones13","time":1}"#.into()],
                "zones13",
            ),
            (vec![r#"{"event":"paused","time":1}"#.into()], "paused"),
            (
                vec![r#"{"event":"recorded","zone":0,"time":1}"#.into()],
                "missing field",
            ),
            (vec![r#"[1, 2, 3]"#.into()], "not an exam event"),
        ];
        for (events, says) in &cases {
            let bad_line = events.len() + 1; // after the `started` line
            let mut lines = vec![STARTED];
            lines.extend(events.iter().map(String::as_str));
            // As the last line, and in the middle, before a good line.
            for then in [None, Some(STARTED)] {
                let mut lines = lines.clone();
                lines.extend(then);
                let err = read_lines(&lines).unwrap_err().to_string();
                assert!(
                    err.contains(&format!("exam.jsonl, line {bad_line}: ")) && err.contains(says),
                    "{lines:?}: {err}"
                );
            }
        }
        // An exam with no `started` line is not taken for a 12-zone exam.
        let err = read_lines(&[RECORDED]).unwrap_err().to_string();
        assert!(
            err.contains("line 1: a 'recorded' event before the exam was started"),
            "{err}"
        );
        let err = read_lines(&["", &finished(0)]).unwrap_err().to_string();
        assert!(err.contains("line 2: a 'finished' event before"), "{err}");
        // What can happen is read: a redo, a re-recording, a new exam after a finish.
        let exam = read_lines(&[
            STARTED,
            RECORDED,
            r#"{"event":"cleared","zone":1,"time":3}"#,
            &recorded("1", "3", "1.0"),
            &recorded("5", "0", "0"),
            &finished(3),
            STARTED,
            &recorded("5", "1", "0.5"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (exam.total(), exam.recorded(), exam.finished),
            (1, 1, false)
        );
    }

    #[test]
    fn a_torn_last_line_is_still_left_out_but_a_whole_one_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        // Torn writes: part of a line, or the zeros a power cut can leave.
        for torn in [
            &b"{\"event\":\"recorded\",\"zone\":1,\"sco"[..],
            &[0u8; 40][..],
        ] {
            let mut text = format!("{STARTED}\n{RECORDED}\n").into_bytes();
            text.extend_from_slice(torn);
            std::fs::write(&path, &text).unwrap();
            assert_eq!(Journal::read(&path).unwrap().unwrap().total(), 2);
        }
        // The last event whole, its newline lost: kept, and the next entry
        // goes on a line of its own.
        std::fs::write(&path, format!("{STARTED}\n{RECORDED}")).unwrap();
        let mut journal = Journal::open(&path).unwrap();
        assert_eq!(journal.exam().unwrap().total(), 2);
        journal
            .command(Command::NextZone, Protocol::Blue6, None)
            .unwrap();
        journal
            .command(Command::Record, Protocol::Blue6, score(1))
            .unwrap();
        drop(journal);
        let exam = Journal::read(&path).unwrap().unwrap();
        assert_eq!((exam.total(), exam.recorded()), (3, 2));
    }

    #[test]
    fn the_model_that_scores_an_exam_is_journaled_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap().scored_by("lusnet-v3.gguf");
        journal
            .command(Command::Start, Protocol::Blue6, None)
            .unwrap();
        drop(journal);
        let exam = Journal::read(&path).unwrap().unwrap();
        assert_eq!(exam.model.as_deref(), Some("lusnet-v3.gguf"));
    }

    #[test]
    fn an_impossible_entry_is_not_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let recorded = |zone, score, confidence| JournalEntry::Recorded {
            zone,
            result: ZoneScore {
                score,
                confidence,
                manual: true,
                findings: None,
            },
            time: 2,
        };
        let err = journal.append(recorded(0, 2, 0.8)).unwrap_err().to_string();
        assert!(
            err.contains("j.jsonl: not written: a 'recorded' event before"),
            "{err}"
        );
        journal
            .command(Command::Start, Protocol::Blue6, None)
            .unwrap();
        for (entry, says) in [
            (recorded(0, 9, 0.8), "score 9"),
            (recorded(6, 2, 0.8), "zone 6"),
            (recorded(0, 2, f32::NAN), "confidence NaN"),
        ] {
            let err = journal.append(entry).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        assert_eq!(journal.exam().unwrap().recorded(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn only_a_regular_file_of_bounded_size_and_lines_is_read() {
        for device in ["/dev/zero", "/dev/full", "/dev/null"] {
            let started = std::time::Instant::now();
            let err = Journal::read(Path::new(device)).unwrap_err().to_string();
            assert!(
                err.contains(device) && err.contains("a character device, not a regular file"),
                "{err}"
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
            assert!(Journal::open(Path::new(device)).is_err());
        }
        let dir = tempfile::tempdir().unwrap();
        let err = Journal::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a folder, not a regular file"), "{err}");

        let path = dir.path().join("big.jsonl");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_JOURNAL_BYTES + 1).unwrap(); // sparse: nothing written
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(err.contains("big.jsonl") && err.contains("64 MiB"), "{err}");

        let long = format!(
            "{{\"event\":\"started\",\"protocol\":\"blue6\",\"time\":1{}}}",
            " ".repeat(MAX_LINE_BYTES)
        );
        for lines in [vec![STARTED, &long, RECORDED], vec![STARTED, &long]] {
            let err = read_lines(&lines).unwrap_err().to_string();
            assert!(
                err.contains(&format!("line 2: longer than {MAX_LINE_BYTES} bytes")),
                "{err}"
            );
        }
        // A torn tail is part of one line: a long unterminated tail is not one.
        let path = dir.path().join("zeros.jsonl");
        let mut text = format!("{STARTED}\n").into_bytes();
        text.extend(vec![0u8; 100_000]);
        std::fs::write(&path, text).unwrap();
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: longer than"), "{err}");
    }

    #[test]
    fn a_large_journal_is_set_aside_when_the_next_exam_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exam.jsonl");
        let exam =
            format!("{STARTED}\n{RECORDED}\n{{\"event\":\"finished\",\"total\":2,\"time\":3}}\n");
        let copies = ARCHIVE_AT_BYTES as usize / exam.len() + 1;
        std::fs::write(&path, exam.repeat(copies)).unwrap();
        let mut journal = Journal::open(&path).unwrap();
        assert!(journal.exam().unwrap().finished);
        journal
            .command(Command::Start, Protocol::Zones12, None)
            .unwrap();
        journal
            .command(Command::Record, Protocol::Zones12, score(1))
            .unwrap();
        drop(journal);
        let exam = Journal::read(&path).unwrap().unwrap();
        assert_eq!((exam.protocol, exam.total()), (Protocol::Zones12, 1));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        let archives: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p != &path)
            .collect();
        assert_eq!(archives.len(), 1, "{archives:?}");
        let name = archives[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("exam-") && name.ends_with(".jsonl"),
            "{name}"
        );
        assert!(Journal::read(&archives[0]).unwrap().unwrap().finished);
    }
}
