//! The exam at the bedside, as the clinician runs it: the zone being
//! scanned, when it is recorded, and the journal writes.
//!
//! A [`Session`] sits in the pipeline's output stage, which hands it every
//! scored frame ([`Session::observe`]) and every command from a key, a
//! button or a tap ([`Session::command`]). The screen only paints what the
//! session holds, so a display that lags behind, drops frames or fails
//! changes neither a zone's score nor what is journaled.
//!
//! A zone is scored from the frames since it was selected (its own
//! [`ClipTracker`]). Selecting a zone, starting an exam or redoing a zone
//! *arms* it: it is then recorded once its score is stable and the probe
//! has been held for [`MIN_ZONE_HOLD`]. Recording disarms it, so a zone is
//! never recorded from a probe still resting on the previous one. The
//! record button records the zone at once. While the picture is frozen,
//! the zone sees no frames.
//!
//! The zone's newest frames are kept too, and saved beside the journal
//! when the zone is recorded ([`super::ZoneClips`]): the clip the hospital
//! gets for that zone.

use super::clips::ClipBuffer;
use super::{Command, Exam, ExamIdentity, Journal, Protocol, Scheduled, ZoneClips, ZoneScore};
use crate::frame::GrayFrame;
use crate::model::FramePrediction;
use crate::preprocess::Roi;
use crate::scoring::{ClipTracker, ScoreUpdate};
use std::time::{Duration, Instant};

/// A selected zone is recorded by stability only after the probe was held
/// this long: frames that arrive in a burst cannot record it at once.
pub const MIN_ZONE_HOLD: Duration = Duration::from_secs(2);

/// Where a finished exam is handed over to: the hospital's outbox, which
/// must have it on disk when `queue` returns.
pub trait ExamSink: Send {
    /// Queues the finished `exam` of `journal`; an error says why not.
    fn queue(&mut self, journal: &std::path::Path, exam: &Exam) -> Result<(), String>;

    /// What the sink still owes the hospital, as last counted.
    fn counts(&self) -> Option<OutboxCounts> {
        None
    }
}

/// The outbox's jobs by state, for the screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Not tried yet.
    pub pending: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed at their last try; tried again later.
    pub failed: usize,
}

/// The hospital's worklist, asked when an exam starts. The bedside never
/// waits on it: [`WorklistQuery::request`] starts a query and returns, and
/// the session polls for the answer.
pub trait WorklistQuery: Send {
    /// Starts a query.
    fn request(&mut self);
    /// The answer, once it is in: the exams scheduled for this unit, or why
    /// there are none to show.
    fn poll(&mut self) -> Option<Result<Vec<Scheduled>, String>>;
}

/// Choosing whose exam it is, before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picking {
    /// The worklist was asked; its answer is awaited.
    Waiting,
    /// The scheduled exams are shown; `selected` is the row the keys move
    /// (one past the last entry: an anonymous exam).
    Choosing {
        /// The scheduled exams.
        entries: Vec<Scheduled>,
        /// The selected row.
        selected: usize,
    },
}

/// What became of handing the finished exam over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// Queued for the hospital (durably).
    Queued,
    /// Not queued, and why: the exam is in the journal and can be sent
    /// with `pleura send`.
    NotQueued(String),
}

/// The running score of the zone being scanned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoneProgress {
    /// The zone's score so far, as it would be recorded.
    pub score: ZoneScore,
    /// Whether that score is stable.
    pub stable: bool,
    /// How many scored frames it comes from.
    pub frames: usize,
}

/// An exam protocol with its journal.
struct ExamRecord {
    protocol: Protocol,
    journal: Journal,
    clips: ZoneClips,
}

/// The bedside workflow: freezing the picture and, when exams are run,
/// the exam's zones and journal.
pub struct Session {
    exam: Option<ExamRecord>,
    frozen: bool,
    /// Frames since the current zone was selected.
    zone: ClipTracker,
    /// The newest of them.
    zone_frames: ClipBuffer,
    progress: Option<ZoneProgress>,
    /// Whether the current zone is recorded when its score is stable.
    armed: bool,
    /// When the current zone was selected.
    zone_since: Instant,
    min_hold: Duration,
    /// Whether the last journal write failed.
    unsaved: bool,
    /// Where finished exams go.
    sink: Option<Box<dyn ExamSink>>,
    /// What became of the last finished exam.
    handover: Option<Handover>,
    /// The worklist asked when an exam starts.
    worklist: Option<Box<dyn WorklistQuery>>,
    /// Choosing the patient, before the exam starts.
    picking: Option<Picking>,
    /// Why the exam in progress is anonymous although a worklist is set.
    notice: Option<&'static str>,
}

impl Default for Session {
    /// A session without exams: the picture can still be frozen.
    fn default() -> Self {
        Self {
            exam: None,
            frozen: false,
            zone: ClipTracker::new(0),
            zone_frames: ClipBuffer::default(),
            progress: None,
            armed: false,
            zone_since: Instant::now(),
            min_hold: MIN_ZONE_HOLD,
            unsaved: false,
            sink: None,
            handover: None,
            worklist: None,
            picking: None,
            notice: None,
        }
    }
}

impl Session {
    /// A session that runs exams of `protocol` and keeps them in `journal`
    /// (opened, with any unfinished exam recovered).
    pub fn with_exam(protocol: Protocol, journal: Journal) -> Self {
        Self {
            exam: Some(ExamRecord {
                protocol,
                clips: ZoneClips::beside(journal.path()),
                journal,
            }),
            ..Self::default()
        }
    }

    /// Hands every exam finished from now on to `sink`.
    pub fn handing_over_to(mut self, sink: Box<dyn ExamSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Asks `worklist` for the scheduled exams whenever an exam starts, and
    /// lets the clinician pick one before it starts.
    pub fn with_worklist(mut self, worklist: Box<dyn WorklistQuery>) -> Self {
        self.worklist = Some(worklist);
        self
    }

    /// Whether the patient is being chosen from the worklist (the exam has
    /// not started yet).
    pub fn picking(&self) -> Option<&Picking> {
        self.picking.as_ref()
    }

    /// Why the exam in progress is anonymous although a worklist is set
    /// (it could not be reached, or listed no one).
    pub fn notice(&self) -> Option<&'static str> {
        self.notice.filter(|_| self.recording())
    }

    /// Takes the worklist's answer if it has come: the scheduled exams are
    /// shown to choose from, or, with none or no answer, the exam starts
    /// anonymous and the screen says why. Called by the output stage on
    /// every turn.
    pub fn poll(&mut self) {
        if self.picking != Some(Picking::Waiting) {
            return;
        }
        let Some(answer) = self.worklist.as_mut().and_then(|w| w.poll()) else {
            return;
        };
        match answer {
            Ok(entries) if !entries.is_empty() => {
                self.picking = Some(Picking::Choosing {
                    entries,
                    selected: 0,
                });
            }
            Ok(_) => self.begin(None, Some("NO ONE SCHEDULED: ANONYMOUS EXAM")),
            Err(reason) => {
                log::error!("worklist: {reason}; the exam starts anonymous");
                self.begin(None, Some("NO WORKLIST: ANONYMOUS EXAM"));
            }
        }
    }

    /// A command while the patient is chosen: the keys move through the
    /// list, record (or start) picks, a tap picks its row, finish gives up
    /// and starts an anonymous exam.
    fn choose(&mut self, command: Command) {
        let Some(picking) = self.picking.as_mut() else {
            return;
        };
        let Picking::Choosing { entries, selected } = picking else {
            if matches!(command, Command::Start | Command::Finish) {
                self.begin(None, Some("WORKLIST NOT AWAITED: ANONYMOUS EXAM"));
            }
            return;
        };
        let rows = entries.len() + 1;
        let pick = match command {
            Command::NextZone => {
                *selected = (*selected + 1) % rows;
                None
            }
            Command::PreviousZone => {
                *selected = (*selected + rows - 1) % rows;
                None
            }
            Command::Record | Command::Start => Some(*selected),
            Command::Choose(row) if row < rows => Some(row),
            Command::Finish => Some(entries.len()),
            _ => None,
        };
        if let Some(row) = pick {
            let entry = entries.get(row).cloned();
            self.begin(entry, None);
        }
    }

    /// Starts the exam: of the scheduled `entry`, or anonymous (saying why
    /// with `notice`).
    fn begin(&mut self, entry: Option<Scheduled>, notice: Option<&'static str>) {
        self.picking = None;
        self.notice = notice;
        self.handover = None;
        let Some(exam) = self.exam.as_mut() else {
            return;
        };
        let identity = match &entry {
            Some(entry) => entry.identity(),
            None => ExamIdentity::anonymous(super::unix_now()),
        };
        match exam.journal.start(exam.protocol, identity) {
            Ok(()) => {
                self.unsaved = false;
                self.armed = true;
                self.restart_zone();
            }
            Err(e) => {
                log::error!("{e}");
                self.unsaved = true;
            }
        }
    }

    /// What became of handing the finished exam over, once it is finished
    /// (`None` without a sink, or before the exam is finished).
    pub fn handover(&self) -> Option<&Handover> {
        self.handover.as_ref()
    }

    /// What the outbox still owes the hospital, when exams are handed to
    /// one.
    pub fn outbox(&self) -> Option<OutboxCounts> {
        self.sink.as_ref().and_then(|sink| sink.counts())
    }

    /// The exam in the journal, finished or not.
    pub fn exam(&self) -> Option<&Exam> {
        self.exam.as_ref().and_then(|e| e.journal.exam())
    }

    /// Whether an exam is being recorded (started and not finished).
    pub fn recording(&self) -> bool {
        self.exam().is_some_and(|e| !e.finished)
    }

    /// Whether the exam is finished: the screen shows its summary.
    pub fn summary(&self) -> bool {
        self.exam().is_some_and(|e| e.finished)
    }

    /// Whether the picture is frozen.
    pub fn frozen(&self) -> bool {
        self.frozen
    }

    /// Whether the current zone will be recorded when its score is stable.
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// The running score of the current zone, once it has seen a frame.
    pub fn zone(&self) -> Option<ZoneProgress> {
        self.progress
    }

    /// Whether the last journal write failed: what the screen shows as
    /// recorded may not be saved. Cleared by the next write that succeeds.
    pub fn unsaved(&self) -> bool {
        self.unsaved
    }

    /// Carries out a command; a failed journal write is logged and shown
    /// ([`Session::unsaved`]).
    pub fn command(&mut self, command: Command) {
        if command == Command::ToggleFreeze {
            self.frozen = !self.frozen;
            return;
        }
        if self.exam.is_none() {
            log::info!("no exam protocol given (--exam): {command:?} ignored");
            return;
        }
        if self.picking.is_some() {
            self.choose(command);
            return;
        }
        if command == Command::Start && self.worklist.is_some() {
            // Whose exam: the worklist is asked, and the exam starts once
            // the patient is chosen (or at once anonymous, without one).
            if let Some(worklist) = self.worklist.as_mut() {
                worklist.request();
            }
            self.picking = Some(Picking::Waiting);
            return;
        }
        let Some(exam) = self.exam.as_mut() else {
            return;
        };
        let score = self.progress.map(|zone| zone.score);
        let zone = exam.journal.exam().map(|e| e.current);
        let changed = match exam.journal.command(command, exam.protocol, score) {
            Ok(changed) => {
                self.unsaved = false;
                changed
            }
            Err(e) => {
                log::error!("{e}");
                self.unsaved = true;
                false
            }
        };
        log::info!(
            "{command:?}: {}, zone {:?}",
            if changed { "done" } else { "nothing to do" },
            exam.journal.exam().map(|e| e.current_name())
        );
        if changed && command == Command::Record {
            self.zone_recorded(zone);
        }
        if changed && command == Command::Redo {
            self.zone_cleared(zone);
        }
        if changed && command == Command::Start {
            self.handover = None;
        }
        if changed && command == Command::Finish {
            self.hand_over();
        }
        if changed && command != Command::Finish {
            // Selecting a zone (or starting over) arms it; recording disarms
            // it. Either way its score starts afresh.
            self.armed = command != Command::Record;
            self.restart_zone();
        }
    }

    /// Adds a scored frame (`prediction` for `frame`) to the current zone,
    /// and records the zone when it is armed, held long enough and stable.
    /// Frames while frozen, or outside a running exam, are not counted.
    pub fn observe(&mut self, prediction: &FramePrediction, frame: &GrayFrame) {
        if !self.observing() {
            return;
        }
        let update = self.zone.update(prediction);
        self.zone_frames.push(frame);
        self.take(&update);
    }

    /// Adds a frame scored on a provisional `sector` (the clip's sector is
    /// not locked yet): it shows in the zone's score, but counts only once
    /// [`Session::settle`] finds that the locked sector agrees (as for the
    /// clip score, see [`crate::scoring::ClipTracker`]).
    pub fn observe_provisional(
        &mut self,
        prediction: &FramePrediction,
        frame: &GrayFrame,
        sector: Roi,
    ) {
        if !self.observing() {
            return;
        }
        let update = self.zone.update_provisional(prediction, sector);
        self.zone_frames.push(frame);
        self.take(&update);
    }

    /// The clip's sector is locked at `locked`: the zone's provisional
    /// frames that agree with it count, the others are dropped.
    pub fn settle(&mut self, locked: Option<Roi>) {
        if let Some(update) = self.zone.settle(locked) {
            self.take(&update);
        }
    }

    /// Whether frames count for the zone now.
    fn observing(&self) -> bool {
        !self.frozen && self.recording() && self.picking.is_none()
    }

    /// Shows the zone's scores after a frame, and records the zone when it
    /// is armed, held long enough and stable.
    fn take(&mut self, update: &ScoreUpdate) {
        let progress = ZoneProgress {
            score: ZoneScore {
                score: update.clip.score,
                confidence: update.clip.confidence,
                manual: false,
                findings: update.findings,
            },
            stable: update.stable,
            frames: update.clip.frames,
        };
        self.progress = Some(progress);
        if progress.stable
            && self.armed
            && self.zone_since.elapsed() >= self.min_hold
            && let Some(exam) = self.exam.as_mut()
        {
            let zone = exam.journal.exam().map(|e| e.current);
            match exam.journal.record_stable(progress.score) {
                Ok(recorded) => {
                    self.armed = !recorded;
                    self.unsaved = false;
                    if recorded {
                        self.zone_recorded(zone);
                    }
                }
                Err(e) => {
                    log::error!("{e}");
                    self.unsaved = true;
                }
            }
        }
    }

    /// Once `zone`'s score is cleared in the journal (to be redone): says
    /// so in the log, as [`Session::zone_recorded`] says a recording.
    fn zone_cleared(&self, zone: Option<usize>) {
        let Some((exam, zone)) = self.exam.as_ref().zip(zone) else {
            return;
        };
        if let Some(cleared) = exam.journal.exam()
            && let Some(identity) = cleared.identity.as_ref()
        {
            log::info!(
                "cleared zone {zone} ({}) of exam {}",
                cleared.protocol.zones().get(zone).copied().unwrap_or("?"),
                identity.uid_root
            );
        }
    }

    /// Once `zone`'s score is in the journal (fsynced): says so in the log,
    /// then saves the frames it was recorded from beside the journal. A
    /// failed save is logged and leaves the zone's score recorded: the exam
    /// is then sent without that zone's clip.
    fn zone_recorded(&mut self, zone: Option<usize>) {
        let (Some(exam), Some(zone)) = (&self.exam, zone) else {
            return;
        };
        let Some(recorded) = exam.journal.exam() else {
            return;
        };
        let Some(identity) = recorded.identity.as_ref() else {
            return;
        };
        if let Some(Some(score)) = recorded.zones.get(zone) {
            // The kill test (scripts/killtest) reads this line as the unit's
            // word that the zone is kept.
            log::info!(
                "recorded zone {zone} ({}) of exam {}: score {}",
                recorded.protocol.zones().get(zone).copied().unwrap_or("?"),
                identity.uid_root,
                score.score
            );
        }
        if let Err(e) = exam
            .clips
            .save_buffer(&identity.uid_root, zone, &self.zone_frames)
        {
            log::error!("{e}: zone {zone} is recorded, but will be sent without its clip");
        }
    }

    /// Queues the finished exam with the sink, if there is one.
    fn hand_over(&mut self) {
        let (Some(sink), Some(record)) = (self.sink.as_mut(), self.exam.as_ref()) else {
            return;
        };
        let Some(exam) = record.journal.exam() else {
            return;
        };
        self.handover = Some(match sink.queue(record.journal.path(), exam) {
            Ok(()) => Handover::Queued,
            Err(reason) => {
                log::error!("the finished exam was not queued for the hospital: {reason}");
                Handover::NotQueued(reason)
            }
        });
    }

    /// The identity of the exam in the journal, if it has one.
    pub fn identity(&self) -> Option<&ExamIdentity> {
        self.exam().and_then(|e| e.identity.as_ref())
    }

    /// Starts scoring the current zone from scratch.
    fn restart_zone(&mut self) {
        self.zone = ClipTracker::new(0);
        self.zone_frames.clear();
        self.zone_since = Instant::now();
        self.progress = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SCORE_CLASSES;

    /// A frame the network is sure shows `score`.
    fn frame(score: usize) -> FramePrediction {
        let mut probs = [0.02; SCORE_CLASSES];
        probs[score] = 1.0 - 0.02 * (SCORE_CLASSES - 1) as f32;
        FramePrediction {
            score_probs: probs,
            seg_size: 0,
            seg_labels: Vec::new(),
            heads: None,
        }
    }

    /// A small frame to go with a prediction.
    fn picture() -> GrayFrame {
        GrayFrame {
            width: 4,
            height: 3,
            pixels: vec![7; 12],
            seq: 0,
            captured: Instant::now(),
        }
    }

    impl Session {
        fn observe_frame(&mut self, prediction: &FramePrediction) {
            self.observe(prediction, &picture());
        }
    }

    fn session(dir: &tempfile::TempDir) -> Session {
        let journal = Journal::open(&dir.path().join("exam.jsonl")).unwrap();
        let mut session = Session::with_exam(Protocol::Blue6, journal);
        session.min_hold = Duration::ZERO;
        session
    }

    #[test]
    fn an_armed_zone_is_recorded_once_when_stable_and_the_next_zone_waits_for_its_own_frames() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = session(&dir);
        session.command(Command::Start);
        assert!(session.armed() && session.zone().is_none());
        while session.exam().unwrap().zones[0].is_none() {
            session.observe_frame(&frame(2));
            assert!(session.zone().unwrap().frames < 100, "never recorded");
        }
        assert_eq!(session.exam().unwrap().zones[0].unwrap().score, 2);
        assert!(!session.armed(), "recording disarms the zone");

        session.command(Command::NextZone);
        assert!(session.armed() && session.zone().is_none(), "a fresh zone");
        session.observe_frame(&frame(1));
        assert_eq!(session.zone().unwrap().frames, 1);
        assert!(session.exam().unwrap().zones[1].is_none(), "not yet stable");
    }

    #[test]
    fn the_record_button_records_the_frames_since_the_zone_was_selected() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = session(&dir);
        session.command(Command::Start);
        session.command(Command::Record);
        assert_eq!(session.exam().unwrap().recorded(), 0, "no frame yet");
        session.observe_frame(&frame(3));
        session.command(Command::Record);
        let zone = session.exam().unwrap().zones[0].unwrap();
        assert_eq!((zone.score, zone.manual), (3, true));
    }

    #[test]
    fn a_recorded_zone_keeps_its_frames_beside_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = session(&dir);
        session.command(Command::Start);
        session.observe_frame(&frame(3));
        session.observe_frame(&frame(3));
        session.command(Command::Record);
        let root = &session.identity().expect("an anonymous identity").uid_root;
        let clip = ZoneClips::beside(&dir.path().join("exam.jsonl"))
            .load(root, 0)
            .unwrap()
            .expect("the zone's clip");
        assert_eq!((clip.width, clip.height, clip.frames()), (4, 3, 2));
    }

    /// A worklist whose answer is set by the test.
    struct Answer(
        Option<Result<Vec<Scheduled>, String>>,
        std::sync::Arc<std::sync::Mutex<u32>>,
    );

    impl WorklistQuery for Answer {
        fn request(&mut self) {
            *self.1.lock().unwrap() += 1;
        }
        fn poll(&mut self) -> Option<Result<Vec<Scheduled>, String>> {
            self.0.take()
        }
    }

    fn scheduled(id: &str) -> Scheduled {
        Scheduled {
            patient: super::super::Patient {
                name: format!("DOE^{id}"),
                id: id.into(),
                birth_date: None,
                sex: None,
            },
            accession: format!("ACC-{id}"),
            study_uid: "1.2.3".into(),
            description: "Lung ultrasound".into(),
            time: String::new(),
        }
    }

    fn with_worklist(
        dir: &tempfile::TempDir,
        answer: Result<Vec<Scheduled>, String>,
    ) -> (Session, std::sync::Arc<std::sync::Mutex<u32>>) {
        let asked = std::sync::Arc::new(std::sync::Mutex::new(0));
        let session = session(dir).with_worklist(Box::new(Answer(Some(answer), asked.clone())));
        (session, asked)
    }

    #[test]
    fn the_worklist_is_asked_at_start_and_the_picked_patient_starts_the_exam() {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, asked) = with_worklist(&dir, Ok(vec![scheduled("A"), scheduled("B")]));
        session.command(Command::Start);
        assert_eq!(*asked.lock().unwrap(), 1);
        assert_eq!(session.picking(), Some(&Picking::Waiting));
        assert!(session.exam().is_none(), "nothing starts before the answer");
        session.observe_frame(&frame(2));
        assert!(session.zone().is_none(), "no zone is scored while choosing");
        session.poll();
        session.command(Command::NextZone);
        session.command(Command::NextZone);
        session.command(Command::NextZone); // past "anonymous", back to A
        session.command(Command::NextZone);
        session.command(Command::Record); // picks B
        assert_eq!(session.picking(), None);
        let identity = session.identity().unwrap();
        assert_eq!(identity.patient.as_ref().unwrap().id, "B");
        assert_eq!(identity.accession, "ACC-B");
        assert_eq!(identity.study_uid, "1.2.3");
        assert!(session.recording() && session.armed());
        assert_eq!(session.notice(), None);
    }

    #[test]
    fn a_worklist_that_cannot_be_reached_starts_the_exam_anonymous_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, _) = with_worklist(&dir, Err("connection refused".into()));
        session.command(Command::Start);
        session.poll();
        assert!(session.recording());
        assert!(session.identity().unwrap().patient.is_none());
        assert_eq!(session.notice(), Some("NO WORKLIST: ANONYMOUS EXAM"));
    }

    #[test]
    fn a_tap_picks_a_row_and_finish_gives_up_for_an_anonymous_exam() {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, _) = with_worklist(&dir, Ok(vec![scheduled("A"), scheduled("B")]));
        session.command(Command::Start);
        session.poll();
        session.command(Command::Choose(1));
        assert_eq!(session.identity().unwrap().accession, "ACC-B");

        let dir = tempfile::tempdir().unwrap();
        let (mut session, _) = with_worklist(&dir, Ok(vec![scheduled("A")]));
        session.command(Command::Start);
        session.poll();
        session.command(Command::Finish);
        assert!(session.identity().unwrap().patient.is_none());
        // No one scheduled: anonymous at once, and said.
        let dir = tempfile::tempdir().unwrap();
        let (mut session, _) = with_worklist(&dir, Ok(Vec::new()));
        session.command(Command::Start);
        session.poll();
        assert_eq!(session.notice(), Some("NO ONE SCHEDULED: ANONYMOUS EXAM"));
    }

    #[test]
    fn a_frozen_picture_pauses_the_zone() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = session(&dir);
        session.command(Command::Start);
        session.observe_frame(&frame(0));
        session.command(Command::ToggleFreeze);
        session.observe_frame(&frame(3));
        assert!(session.frozen());
        assert_eq!(session.zone().unwrap().frames, 1);
        session.command(Command::ToggleFreeze);
        session.observe_frame(&frame(3));
        assert_eq!(session.zone().unwrap().frames, 2);
    }

    #[test]
    fn without_an_exam_only_freezing_does_anything() {
        let mut session = Session::default();
        session.command(Command::Start);
        session.observe_frame(&frame(1));
        assert!(session.exam().is_none() && session.zone().is_none());
        session.command(Command::ToggleFreeze);
        assert!(session.frozen());
    }
}
