//! A live run at the bedside, assembled from a board profile: the model
//! (and, on a version's trial start, its self-test), the source, the exam
//! journal, the display, the clinician's inputs and the recorder, wired by
//! [`crate::pipeline`].
//!
//! The command line (`pleura run`) only turns its flags into
//! [`LiveOptions`]; whatever a flag leaves out comes from the board.

use crate::board::{BoardProfile, WhenAbsent};
use crate::display::{DisplayError, DisplaySetup, DisplaySpec};
use crate::exam::{ExamError, Journal, Protocol, Session};
use crate::hospital::outbox::{Counts, Destination, Outbox, Queue, Sender, spawn_sender};
use crate::hospital::worklist::{WORKLIST_TIMEOUT, WorklistClient};
use crate::input::{KeyMapError, spawn_evdev, spawn_stdin_keys};
use crate::model::{LusNet, ModelError, Precision};
use crate::pipeline::{RunOptions, Stages};
use crate::preprocess::{Roi, SectorMode};
use crate::record::{FrameLog, OutputError, Recorder, RunReport};
use crate::source::{FrameSource, SourceError, SourceSpec};
use crate::spec::AeAddress;
use crate::update::UpdateError;
use crate::update::health::prove_trial;
use embedded_graphics::prelude::Size;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// What a live run is asked for; `None` takes the board's.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Where frames come from.
    pub source: Option<SourceSpec>,
    /// Folder of the demo clips (`--source demo`).
    pub demo_dir: PathBuf,
    /// The model file.
    pub model: Option<PathBuf>,
    /// The inference path.
    pub precision: Option<Precision>,
    /// A fixed sector instead of the one found.
    pub roi: Option<Roi>,
    /// Hold each clip's first frames until its sector is locked, instead
    /// of scoring them on a provisional one ([`SectorMode::Wait`]).
    pub wait_for_sector: bool,
    /// Replay recordings in real time (frames may be dropped).
    pub pace: bool,
    /// Where frames are shown.
    pub display: Option<DisplaySpec>,
    /// Draw one frame in this many (the file displays).
    pub every: u64,
    /// Size of the PNG or window bedside screen.
    pub screen: Option<(usize, usize)>,
    /// The exam protocol, when exams may be run.
    pub exam: Option<Protocol>,
    /// The exam journal.
    pub journal: Option<PathBuf>,
    /// Input devices (buttons, keypads, touchscreens).
    pub inputs: Vec<PathBuf>,
    /// Where the run report will be written: checked before the run.
    pub report: Option<PathBuf>,
    /// Write one JSON line per scored frame here.
    pub log: Option<PathBuf>,
    /// Set from another thread (a signal handler) to stop the run.
    pub stop: Arc<AtomicBool>,
    /// Where finished exams go, and the sender that takes them there.
    pub hospital: Option<Hospital>,
}

/// The hospital's side of a run: finished exams are queued in the outbox
/// for the destinations, and a sender thread delivers what is due.
#[derive(Debug, Clone)]
pub struct Hospital {
    /// The unit's outbox.
    pub outbox: Outbox,
    /// Where every finished exam goes (none: the sender still delivers what
    /// is queued).
    pub destinations: Vec<Destination>,
    /// Who sends, and how long it waits for a peer.
    pub sender: Sender,
    /// The modality worklist asked when an exam starts.
    pub worklist: Option<AeAddress>,
}

/// Why a live run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum BedsideError {
    /// The display, or an option that only the bedside screen takes.
    #[error(transparent)]
    Display(#[from] DisplayError),
    /// A screen size asked of a display that has its panel's.
    #[error(
        "--screen sizes the png: and window screens; a framebuffer or DRM display has the \
         size of its panel"
    )]
    ScreenSizeFixed,
    /// The run report or the frame log cannot be written.
    #[error("cannot write the run report: {0}")]
    Report(OutputError),
    /// The frame log cannot be written.
    #[error(transparent)]
    Log(OutputError),
    /// The model file.
    #[error("cannot load the model: {0}")]
    Model(#[from] ModelError),
    /// The version on trial did not prove healthy, or could not be confirmed.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The source.
    #[error("cannot open the source {spec}: {cause}")]
    Source {
        /// The source asked for.
        spec: String,
        /// Why it cannot be opened.
        cause: Box<SourceError>,
    },
    /// The exam journal.
    #[error(transparent)]
    Exam(#[from] ExamError),
    /// The board's key map.
    #[error(transparent)]
    Keys(#[from] KeyMapError),
}

/// Opens the source asked for, else the board's grabber; when the grabber
/// is not there and the board says so (`[capture] when_absent = "demo"`,
/// a development PC), the demo clips instead, logging why. Returns the
/// source opened, and what it is.
fn open_source(
    board: &BoardProfile,
    options: &LiveOptions,
) -> Result<(Box<dyn FrameSource>, SourceSpec), BedsideError> {
    let failed = |spec: &SourceSpec, cause| BedsideError::Source {
        spec: spec.to_string(),
        cause: Box::new(cause),
    };
    let open = |spec: SourceSpec| match spec.open(&options.demo_dir) {
        Ok(source) => Ok((source, spec)),
        Err(cause) => Err(failed(&spec, cause)),
    };
    if let Some(spec) = &options.source {
        return open(spec.clone());
    }
    let grabber = board.source_spec();
    match grabber.open(&options.demo_dir) {
        Ok(source) => Ok((source, grabber)),
        Err(SourceError::Missing { path }) if board.capture.when_absent == WhenAbsent::Demo => {
            log::warn!(
                "no grabber at {}: playing the demo clips in {} instead, as the {} profile says \
                 (capture.when_absent = \"demo\"); --source picks another source",
                path.display(),
                options.demo_dir.display(),
                board.name
            );
            open(SourceSpec::Demo)
        }
        Err(cause) => Err(failed(&grabber, cause)),
    }
}

/// Runs the board's bedside program with `options` until the source ends
/// or `options.stop` is set; returns the run's report (not yet written).
pub fn run(board: &BoardProfile, options: LiveOptions) -> Result<RunReport, BedsideError> {
    let started = Instant::now();
    let display = match &options.display {
        Some(display) => display.clone(),
        None => board.display_spec()?,
    };
    if options.exam.is_some() {
        display.check_bedside("--exam")?;
    }
    if !options.inputs.is_empty() {
        display.check_bedside("--input")?;
    }
    if options.screen.is_some() {
        display.check_bedside("--screen")?;
        if matches!(
            display,
            DisplaySpec::Framebuffer { .. } | DisplaySpec::Kms { .. }
        ) {
            return Err(BedsideError::ScreenSizeFixed);
        }
    }
    if let Some(path) = &options.report {
        RunReport::check_destination(path).map_err(BedsideError::Report)?;
    }
    let log = options
        .log
        .as_deref()
        .map(FrameLog::create)
        .transpose()
        .map_err(BedsideError::Log)?;
    crate::model::set_threads(board.threads);
    let model_path = options.model.clone().unwrap_or(board.model.clone());
    let model = LusNet::load(&model_path, options.precision.unwrap_or(board.precision))?;
    prove_trial(&model, board, started)?;
    let classes = model.meta().seg_classes.clone();
    let (source, spec) = open_source(board, &options)?;
    let (input_sender, inputs) = crossbeam_channel::unbounded();
    let mut session = match options.exam {
        Some(protocol) => {
            let journal = options.journal.clone().unwrap_or_else(|| board.journal());
            let model_name = model_path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            Session::with_exam(protocol, Journal::open(&journal)?.scored_by(model_name))
        }
        None => Session::default(),
    };
    // Stopped when the run ends; a send it is in the middle of then
    // resumes at the next start, as after a power cut.
    let sender_stop = Arc::new(AtomicBool::new(false));
    if let Some(hospital) = options.hospital.clone() {
        if let Some(peer) = hospital.worklist.clone() {
            session = session.with_worklist(Box::new(WorklistClient::new(
                hospital.sender.station.ae_title.clone(),
                peer,
                WORKLIST_TIMEOUT,
                hospital.sender.link.clone(),
            )));
        }
        let counts = Counts::default();
        if !hospital.destinations.is_empty() {
            session = session.handing_over_to(Box::new(Queue {
                outbox: hospital.outbox.clone(),
                destinations: hospital.destinations.clone(),
                counts: counts.clone(),
            }));
        }
        if let Err(e) = spawn_sender(
            hospital.outbox,
            hospital.sender,
            SENDER_PERIOD,
            counts,
            sender_stop.clone(),
        ) {
            log::error!("the outbox sender did not start ({e}): exams stay queued");
        }
    }
    let (width, height) = options.screen.unwrap_or((
        board.display.size[0] as usize,
        board.display.size[1] as usize,
    ));
    let renderer = display.open(DisplaySetup {
        classes: classes.clone(),
        every: options.every,
        screen: Size::new(width as u32, height as u32),
        exam: options.exam.is_some(),
        input_sender: input_sender.clone(),
    })?;
    if display.check_bedside("keys").is_ok() {
        let keys = board.key_map()?;
        spawn_stdin_keys(keys.clone(), input_sender.clone());
        let devices = match options.inputs.is_empty() {
            true => &board.input.devices,
            false => &options.inputs,
        };
        for device in devices {
            if let Err(e) = spawn_evdev(device, keys.clone(), input_sender.clone()) {
                log::warn!(
                    "input device {}: {e}; going on without it",
                    device.display()
                );
            }
        }
    }
    let run_options = RunOptions {
        pace: options.pace,
        sector: match (options.roi, options.wait_for_sector) {
            (Some(roi), _) => SectorMode::Fixed(roi),
            (None, true) => SectorMode::Wait,
            (None, false) => SectorMode::Auto,
        },
        stop: options.stop,
    };
    let recorder = match options.report {
        Some(_) => Recorder::new(classes, log),
        None => Recorder::new(classes, log).without_series(),
    };
    let stages = Stages {
        source,
        model: &model,
        renderer,
        session: &mut session,
        inputs,
        recorder,
        heartbeat: Some(Box::new(crate::service::Watchdog::new())),
    };
    crate::service::ready(&format!("scoring {spec}"));
    let report = crate::pipeline::run(
        stages,
        &run_options,
        &spec.to_string(),
        &model_path.display().to_string(),
    );
    sender_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(report)
}

/// How often the outbox sender looks for due jobs.
const SENDER_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);
