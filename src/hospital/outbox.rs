//! The durable outbox: what a unit still owes the hospital, kept on disk so
//! that a link that comes and goes, a restart or a power cut loses nothing.
//!
//! A finished exam is queued as one job per destination (the PACS, the
//! HL7 receiver): a small JSON file in the outbox folder, written, fsynced
//! and renamed into place, and the folder fsynced, before the screen says
//! "queued". A job names the exam by its journal and UID root; the objects
//! are made again from the journal and the zone clips each time it is
//! tried, and they are the same objects each time (their UIDs are the
//! exam's), so that a PACS stores each instance once however often it is
//! sent.
//!
//! A sender tries every job that is due ([`Outbox::deliver_due`]). A job
//! that fails waits longer each time, 5 s doubling up to
//! [`MAX_BACKOFF`], and is kept with its error until it succeeds. A PACS
//! job notes each instance once the PACS has it, so that a send cut short
//! (by a kill or a power cut) resumes where it stopped. A job file that
//! cannot be read is reported by name and left for a person to look at.

use super::mllp;
use super::net;
use super::{ExamObjects, HospitalError, Station};
use crate::atomic_write::{Durability, write_atomically};
use crate::exam::{Exam, Journal, OutboxCounts, ZoneClips, unix_now};
use crate::spec::{AeAddress, HostPort};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest wait between two tries of a job.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The first wait after a failed try.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The largest job file read.
const MAX_JOB_BYTES: u64 = 64 * 1024;

/// Where a job goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A PACS, by C-STORE.
    Pacs(AeAddress),
    /// An HL7 receiver, by MLLP.
    Hl7(HostPort),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Pacs(peer) => write!(f, "pacs:{peer}"),
            Destination::Hl7(peer) => write!(f, "hl7:{peer}"),
        }
    }
}

impl std::str::FromStr for Destination {
    type Err = crate::spec::SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("pacs", peer)) => Ok(Destination::Pacs(peer.parse()?)),
            Some(("hl7", peer)) => Ok(Destination::Hl7(peer.parse()?)),
            _ => Err(crate::spec::SpecError::NotAHostPort(text.to_string())),
        }
    }
}

/// A job: one exam to one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The exam's journal.
    pub journal: PathBuf,
    /// The exam's UID root: which exam of the journal.
    pub uid_root: String,
    /// Its accession number, to show.
    pub accession: String,
    /// Where it goes (`pacs:AE@HOST:PORT` or `hl7:HOST:PORT`).
    pub destination: String,
    /// When it was queued (seconds since the epoch).
    pub queued_at: u64,
    /// Tries so far.
    pub attempts: u32,
    /// When it may be tried next.
    pub next_try_at: u64,
    /// Why the last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The SOP instances the PACS already has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<String>,
    /// When it was all delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<u64>,
}

/// A job's state, as `pleura outbox` and the screen say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Not tried yet.
    Pending,
    /// Its last try failed; it is tried again at `next_try_at`.
    Failed,
    /// Delivered.
    Sent,
}

impl Job {
    /// Its state.
    pub fn state(&self) -> JobState {
        match (self.sent_at, &self.last_error) {
            (Some(_), _) => JobState::Sent,
            (None, Some(_)) => JobState::Failed,
            (None, None) => JobState::Pending,
        }
    }
}

/// Why the outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file or the folder could not be read or written.
    #[error("outbox {path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        cause: std::io::Error,
    },
    /// A job file that is not a job Pleura wrote.
    #[error("outbox {path}: not a job: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The exam to queue cannot be sent.
    #[error(transparent)]
    Exam(#[from] HospitalError),
}

/// A job file and the job it holds, or why it holds none.
pub type JobFile = (PathBuf, Result<Job, OutboxError>);

/// What one try of a job did.
#[derive(Debug)]
pub struct Delivery {
    /// The job file.
    pub path: PathBuf,
    /// The job after the try.
    pub job: Job,
    /// Each object's result (`file name`, what happened), for a PACS; the
    /// message's, for HL7.
    pub results: Vec<(String, String)>,
    /// Why the try failed, if it did.
    pub error: Option<String>,
}

/// The outbox folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// What the sender needs besides the outbox: who it is, and how long to
/// wait for a peer.
#[derive(Debug, Clone)]
pub struct Sender {
    /// This unit.
    pub station: Station,
    /// The HL7 receiving application and facility (MSH-5, MSH-6).
    pub hl7_receiver: (String, String),
    /// How long to wait for a peer at each step.
    pub timeout: Duration,
    /// Plain TCP or TLS to the PACS.
    pub link: net::Link,
}

impl Sender {
    /// The sender of `board`'s unit, as `station`.
    pub fn for_board(board: &crate::board::BoardProfile, station: Station) -> Self {
        Self {
            station,
            hl7_receiver: (
                board.hospital.hl7_application.clone().unwrap_or_default(),
                board.hospital.hl7_facility.clone().unwrap_or_default(),
            ),
            timeout: net::TIMEOUT,
            link: net::Link::default(),
        }
    }
}

impl Outbox {
    /// The outbox of `board`'s unit: `outbox/` in its data folder.
    pub fn for_board(board: &crate::board::BoardProfile) -> Self {
        Self::new(board.paths.data.join("outbox"))
    }

    /// The outbox in `dir` (made when the first job is queued).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The outbox folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues the finished `exam` of `journal` for each destination, durably:
    /// when this returns, the jobs survive a power cut. A job already queued
    /// for the same exam and destination is kept as it is (queuing twice
    /// sends once). Returns the job files.
    pub fn queue(
        &self,
        journal: &Path,
        exam: &Exam,
        destinations: &[Destination],
        now: u64,
    ) -> Result<Vec<PathBuf>, OutboxError> {
        self.enqueue(journal, exam, destinations, now, false)
    }

    /// Queues the exam as [`Outbox::queue`] does, and queues again a job
    /// already delivered (a re-send asked for by a person: the PACS gets
    /// the same instances again, and keeps one of each).
    pub fn queue_again(
        &self,
        journal: &Path,
        exam: &Exam,
        destinations: &[Destination],
        now: u64,
    ) -> Result<Vec<PathBuf>, OutboxError> {
        self.enqueue(journal, exam, destinations, now, true)
    }

    fn enqueue(
        &self,
        journal: &Path,
        exam: &Exam,
        destinations: &[Destination],
        now: u64,
        again: bool,
    ) -> Result<Vec<PathBuf>, OutboxError> {
        let facts = super::ExamFacts::of(exam, "")?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| OutboxError::Io { path, cause }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let journal = std::path::absolute(journal).map_err(io(journal))?;
        let mut paths = Vec::new();
        for destination in destinations {
            let destination = destination.to_string();
            let path = self.job_path(&facts.identity.uid_root, &destination);
            let delivered = again && read_job(&path).is_ok_and(|job| job.sent_at.is_some());
            if !path.exists() || delivered {
                let job = Job {
                    journal: journal.clone(),
                    uid_root: facts.identity.uid_root.clone(),
                    accession: facts.identity.accession.clone(),
                    destination,
                    queued_at: now,
                    attempts: 0,
                    next_try_at: now,
                    last_error: None,
                    delivered: Vec::new(),
                    sent_at: None,
                };
                self.save(&path, &job)?;
            }
            paths.push(path);
        }
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(paths)
    }

    /// Every job file, oldest first, each read or with why it cannot be.
    pub fn jobs(&self) -> Result<Vec<JobFile>, OutboxError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(cause) => {
                return Err(OutboxError::Io {
                    path: self.dir.clone(),
                    cause,
                });
            }
        };
        let mut jobs: Vec<JobFile> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|path| {
                let job = read_job(&path);
                (path, job)
            })
            .collect();
        jobs.sort_by_key(|(path, job)| {
            (job.as_ref().map(|j| j.queued_at).unwrap_or(0), path.clone())
        });
        Ok(jobs)
    }

    /// The jobs by state (an unreadable job counts as failed).
    pub fn counts(&self) -> Result<OutboxCounts, OutboxError> {
        let mut counts = OutboxCounts::default();
        for (_, job) in self.jobs()? {
            match job.map(|job| job.state()) {
                Ok(JobState::Pending) => counts.pending += 1,
                Ok(JobState::Sent) => counts.sent += 1,
                Ok(JobState::Failed) | Err(_) => counts.failed += 1,
            }
        }
        Ok(counts)
    }

    /// Tries every job due at `now` once; jobs for `only` exams (by UID
    /// root), when given, and at once whatever their backoff.
    pub fn deliver_due(&self, sender: &Sender, now: u64, only: Option<&str>) -> Vec<Delivery> {
        let jobs = match self.jobs() {
            Ok(jobs) => jobs,
            Err(e) => {
                log::error!("{e}");
                return Vec::new();
            }
        };
        let mut deliveries = Vec::new();
        for (path, job) in jobs {
            let job = match job {
                Ok(job) => job,
                Err(e) => {
                    log::error!("{e}: left in the outbox for a person to look at");
                    continue;
                }
            };
            let chosen = only.is_none_or(|root| job.uid_root == root);
            let due = only.is_some() || job.next_try_at <= now;
            if job.sent_at.is_some() || !chosen || !due {
                continue;
            }
            deliveries.push(self.try_job(path, job, sender, now));
        }
        deliveries
    }

    /// One try of `job`; the job file is updated after each object the PACS
    /// takes, and at the end.
    fn try_job(&self, path: PathBuf, mut job: Job, sender: &Sender, now: u64) -> Delivery {
        job.attempts += 1;
        let mut results = Vec::new();
        let outcome = self.send_job(&path, &mut job, sender, &mut results);
        match &outcome {
            Ok(()) => {
                job.sent_at = Some(now);
                job.last_error = None;
                log::info!(
                    "outbox: exam {} delivered to {}",
                    job.accession,
                    job.destination
                );
            }
            Err(reason) => {
                job.last_error = Some(reason.clone());
                job.next_try_at = now + backoff(job.attempts).as_secs();
                log::error!(
                    "outbox: exam {} to {}: {reason}; try {} failed, next in {} s",
                    job.accession,
                    job.destination,
                    job.attempts,
                    job.next_try_at - now
                );
            }
        }
        if let Err(e) = self.save(&path, &job) {
            log::error!("{e}");
        }
        Delivery {
            path,
            job,
            results,
            error: outcome.err(),
        }
    }

    fn send_job(
        &self,
        path: &Path,
        job: &mut Job,
        sender: &Sender,
        results: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let exam = Journal::find(&job.journal, &job.uid_root)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "exam {} is no longer in {}",
                    job.uid_root,
                    job.journal.display()
                )
            })?;
        let receiver = (
            sender.hl7_receiver.0.as_str(),
            sender.hl7_receiver.1.as_str(),
        );
        let objects = ExamObjects::build(
            &exam,
            &ZoneClips::beside(&job.journal),
            &sender.station,
            receiver,
        )
        .map_err(|e| e.to_string())?;
        match job.destination.parse::<Destination>() {
            Ok(Destination::Pacs(peer)) => {
                let remaining: Vec<_> = objects
                    .dicom
                    .iter()
                    .filter(|i| !job.delivered.contains(&i.sop_instance))
                    .collect();
                if remaining.is_empty() {
                    return Ok(());
                }
                let answers = net::store(
                    &sender.station.ae_title,
                    &peer,
                    &remaining,
                    sender.timeout,
                    &sender.link,
                )
                .map_err(|e| e.to_string())?;
                let mut failures = Vec::new();
                for (instance, answer) in remaining.iter().zip(answers) {
                    let said = match answer {
                        Ok(status) if status.stored() => {
                            job.delivered.push(instance.sop_instance.clone());
                            // Noted at once: a cut after this does not send it again.
                            if let Err(e) = self.save(path, job) {
                                log::error!("{e}");
                            }
                            status.to_string()
                        }
                        Ok(status) => {
                            failures.push(format!("{}: {status}", instance.file_name));
                            status.to_string()
                        }
                        Err(e) => {
                            failures.push(format!("{}: {e}", instance.file_name));
                            format!("not sent: {e}")
                        }
                    };
                    results.push((instance.file_name.clone(), said));
                }
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(failures.join("; "))
                }
            }
            Ok(Destination::Hl7(peer)) => {
                let ack =
                    mllp::send(&peer, &objects.hl7, sender.timeout).map_err(|e| e.to_string())?;
                results.push(("result.hl7".into(), format!("{} by {peer}", ack.code)));
                Ok(())
            }
            Err(e) => Err(format!("destination {}: {e}", job.destination)),
        }
    }

    fn job_path(&self, uid_root: &str, destination: &str) -> PathBuf {
        let digest = Sha256::digest(destination.as_bytes());
        let tag: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let kind = destination.split(':').next().unwrap_or("job");
        self.dir.join(format!("{uid_root}.{kind}-{tag}.json"))
    }

    fn save(&self, path: &Path, job: &Job) -> Result<(), OutboxError> {
        let bytes = serde_json::to_vec_pretty(job).map_err(|e| OutboxError::Io {
            path: path.to_path_buf(),
            cause: e.into(),
        })?;
        write_atomically(path, Durability::Synced, |out| {
            std::io::Write::write_all(out, &bytes)
        })
        .map_err(|cause| OutboxError::Io {
            path: path.to_path_buf(),
            cause,
        })
    }
}

/// The outbox as the bedside session's sink: a finished exam is queued for
/// every destination before the screen says so.
pub struct Queue {
    /// The outbox.
    pub outbox: Outbox,
    /// Where every exam goes.
    pub destinations: Vec<Destination>,
    /// The jobs by state, as the sender last counted them.
    pub counts: Counts,
}

/// The outbox's jobs by state, shared between the sender thread that counts
/// them and the screen that shows them.
pub type Counts = std::sync::Arc<std::sync::Mutex<OutboxCounts>>;

impl crate::exam::ExamSink for Queue {
    fn queue(&mut self, journal: &Path, exam: &Exam) -> Result<(), String> {
        self.outbox
            .queue(journal, exam, &self.destinations, unix_now())
            .map(|_| ())
            .map_err(|e| e.to_string())?;
        if let (Ok(mut counts), Ok(now)) = (self.counts.lock(), self.outbox.counts()) {
            *counts = now;
        }
        Ok(())
    }

    fn counts(&self) -> Option<OutboxCounts> {
        self.counts.lock().ok().map(|counts| *counts)
    }
}

/// Tries the outbox's due jobs every `every` until `stop` is set, and
/// counts the jobs by state into `counts` after each round: the unit's
/// sender, on its own thread. Returns the thread.
pub fn spawn_sender(
    outbox: Outbox,
    sender: Sender,
    every: Duration,
    counts: Counts,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                outbox.deliver_due(&sender, unix_now(), None);
                if let (Ok(mut shared), Ok(now)) = (counts.lock(), outbox.counts()) {
                    *shared = now;
                }
                std::thread::sleep(every);
            }
        })
}

/// The wait after the `attempts`th failed try: 5 s, 10 s, 20 s … up to
/// [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Reads a job file, trusting nothing in it.
fn read_job(path: &Path) -> Result<Job, OutboxError> {
    let damaged = |reason: String| OutboxError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let io = |cause| OutboxError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() || metadata.len() > MAX_JOB_BYTES {
        return Err(damaged(format!(
            "not a regular file of at most {MAX_JOB_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let job: Job = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    if !crate::exam::is_uid(&job.uid_root) {
        return Err(damaged(format!("uid_root '{}' is not a UID", job.uid_root)));
    }
    job.destination
        .parse::<Destination>()
        .map_err(|e| damaged(format!("destination: {e}")))?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_5_s_up_to_10_minutes() {
        let waits: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn destinations_read_back() {
        for text in ["pacs:PACS@127.0.0.1:104", "hl7:127.0.0.1:2575"] {
            assert_eq!(text.parse::<Destination>().unwrap().to_string(), text);
        }
        assert!("ftp:x:1".parse::<Destination>().is_err());
    }

    #[test]
    fn jobs_are_counted_by_state_and_an_unreadable_one_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let job = |sent_at, last_error: Option<&str>| Job {
            journal: "/data/exam.jsonl".into(),
            uid_root: "2.25.1".into(),
            accession: "A".into(),
            destination: "hl7:127.0.0.1:2575".into(),
            queued_at: 1,
            attempts: 0,
            next_try_at: 1,
            last_error: last_error.map(str::to_string),
            delivered: Vec::new(),
            sent_at,
        };
        for (name, job) in [
            ("a.json", job(None, None)),
            ("b.json", job(Some(2), None)),
            ("c.json", job(None, Some("refused"))),
        ] {
            outbox.save(&dir.path().join(name), &job).unwrap();
        }
        std::fs::write(dir.path().join("d.json"), b"{").unwrap();
        assert_eq!(
            outbox.counts().unwrap(),
            OutboxCounts {
                pending: 1,
                sent: 1,
                failed: 2
            }
        );
    }

    #[test]
    fn a_damaged_job_file_is_named_and_the_rest_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        std::fs::write(dir.path().join("bad.json"), b"{\"journal\": 3").unwrap();
        std::fs::write(
            dir.path().join("evil.json"),
            serde_json::json!({
                "journal": "/x", "uid_root": "../../etc", "accession": "A",
                "destination": "hl7:h:1", "queued_at": 0, "attempts": 0, "next_try_at": 0
            })
            .to_string(),
        )
        .unwrap();
        let jobs = outbox.jobs().unwrap();
        assert_eq!(jobs.len(), 2);
        for (path, job) in jobs {
            let message = job.unwrap_err().to_string();
            assert!(message.contains(&*path.to_string_lossy()), "{message}");
        }
    }
}
