//! The bedside exam: zones, their recorded scores, and a journal that
//! survives crashes.
//!
//! A lung-ultrasound exam walks a protocol of chest zones (12 or 14 zones,
//! or BLUE's 6 points). For each zone the clinician holds the probe until
//! the zone's clip score is stable; it is then recorded (or recorded at once
//! on a button press). The exam total, the LUS score, is the sum of the
//! recorded zone scores.
//!
//! Every change is appended to a [`Journal`] as one JSON line and fsynced
//! before the screen shows it, so a crash or a power cut at any moment
//! loses nothing that was shown as recorded. [`Journal::open`] replays the
//! lines to recover the exam; a torn last line (the write that the power
//! cut interrupted) is ignored and reported.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

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
}

impl std::str::FromStr for Protocol {
    type Err = ExamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "12" | "zones12" => Ok(Protocol::Zones12),
            "14" | "zones14" => Ok(Protocol::Zones14),
            "blue" | "blue6" => Ok(Protocol::Blue6),
            _ => Err(ExamError::Protocol(s.to_string())),
        }
    }
}

/// Why the exam or its journal failed.
#[derive(Debug, thiserror::Error)]
pub enum ExamError {
    /// An unknown protocol name.
    #[error("unknown exam protocol '{0}' (use 12, 14 or blue)")]
    Protocol(String),
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
}

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
}

impl Exam {
    /// A new exam with no zone recorded.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            zones: vec![None; protocol.zones().len()],
            current: 0,
            finished: false,
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
            JournalEntry::Started { protocol, .. } => *self = Exam::new(protocol),
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
            JournalEntry::Finished { .. } => self.finished = true,
        }
    }
}

/// An append-only, fsynced record of exams.
pub struct Journal {
    path: PathBuf,
    file: File,
    exam: Option<Exam>,
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
        let (exam, good_len) = replay(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() > good_len {
            file.set_len(good_len).map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            exam,
        })
    }

    /// The exam a journal holds, read without changing the file (a torn
    /// last line is skipped, not cut off).
    pub fn read(path: &Path) -> Result<Option<Exam>, ExamError> {
        replay(path).map(|(exam, _)| exam)
    }

    /// The exam in progress or last finished, if any.
    pub fn exam(&self) -> Option<&Exam> {
        self.exam.as_ref()
    }

    /// Appends `entry`, fsyncs it, then applies it to the exam. When this
    /// returns `Ok`, the entry survives a power cut.
    pub fn append(&mut self, entry: JournalEntry) -> Result<(), ExamError> {
        let io = |cause| ExamError::Journal {
            path: self.path.clone(),
            cause,
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        let exam = self
            .exam
            .get_or_insert_with(|| Exam::new(Protocol::Zones12));
        exam.apply(&entry);
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
        let time = now();
        let entry = match (command, self.exam.as_ref()) {
            (Command::Start, _) => Some(JournalEntry::Started { protocol, time }),
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
            (Command::ToggleFreeze, Some(_)) => None,
        };
        match entry {
            Some(entry) => self.append(entry).map(|()| true),
            None => Ok(false),
        }
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
            time: now(),
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

/// Replays a journal: the exam it holds and the length of its intact
/// part (everything but a torn last line). A missing file holds nothing.
fn replay(path: &Path) -> Result<(Option<Exam>, u64), ExamError> {
    let io = |cause| ExamError::Journal {
        path: path.to_path_buf(),
        cause,
    };
    let mut exam: Option<Exam> = None;
    let mut good_len = 0u64;
    if path.exists() {
        let reader = BufReader::new(File::open(path).map_err(io)?);
        let mut lines = reader.split(b'\n').enumerate().peekable();
        while let Some((index, line)) = lines.next() {
            let line = line.map_err(io)?;
            let is_last = lines.peek().is_none();
            match serde_json::from_slice::<JournalEntry>(&line) {
                Ok(entry) => {
                    exam.get_or_insert_with(|| Exam::new(Protocol::Zones12))
                        .apply(&entry);
                    good_len += line.len() as u64 + 1;
                }
                Err(_) if line.is_empty() => good_len += 1,
                Err(cause) if is_last => {
                    log::warn!(
                        "exam journal {}: ignoring a cut-off last line ({cause})",
                        path.display()
                    );
                }
                Err(cause) => {
                    return Err(ExamError::Corrupt {
                        path: path.to_path_buf(),
                        line: index + 1,
                        cause,
                    });
                }
            }
        }
    }
    Ok((exam, good_len))
}

fn now() -> u64 {
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
}
