//! The bedside pipeline: three threads joined by bounded channels.
//!
//! ```text
//!  capture ──[newest wins]──► inference ──[bounded]──► output
//!  source,                     sector, crop, LusNet,    record every frame,
//!  pacing                      scores                   exam session gets
//!                                                       every frame and the
//!                                                       clinician's inputs;
//!                                                       display the newest
//! ```
//!
//! This module only wires the stages together; each stage's logic lives in
//! its own module. Latency stays bounded however slow a stage gets:
//!
//! * A live source (or a recording replayed in real time) never waits for
//!   inference. Its channel holds [`CAPTURE_QUEUE`] frames; when it is full
//!   the oldest waiting frame is dropped and counted, and the newest goes in.
//! * A recording played with `pace: false` is not real time, so nothing is
//!   dropped: capture waits for inference (every frame is scored).
//! * The output stage records every scored frame and hands it to the exam
//!   [`Session`], but when it falls behind it displays only the newest one.
//!   A display that fails is turned off; recording, the exam and its
//!   journal go on.
//!
//! A stop request (Ctrl-C, SIGTERM) or the end of the stream ends capture;
//! the frames already captured are still scored, and every output is
//! flushed before [`run`] returns.

use crate::display::{DisplayError, Renderer};
use crate::exam::Session;
use crate::frame::GrayFrame;
use crate::input::Input;
use crate::model::{LusNet, ModelMeta};
use crate::preprocess::quality::{FrameGate, RejectedFrame, Rejection};
use crate::preprocess::{FrameHistory, Roi, SectorMode, SectorTracker, Tracked};
use crate::record::{
    EndReason, FrameCounts, Recorded, Recorder, RunReport, StageClock, StageClocks,
};
use crate::scoring::{ClipTracker, ScoreUpdate, ScoredFrame};
use crate::source::FrameSource;
use crossbeam_channel::{
    Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError, bounded,
};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Frames waiting between capture and inference.
pub const CAPTURE_QUEUE: usize = 2;
/// Scored frames waiting for the output stage.
const OUTPUT_QUEUE: usize = 16;
/// How often the display hears that no frame came (for NO SIGNAL).
const IDLE_TICK: Duration = Duration::from_millis(250);
/// How often a capture waiting for a full queue checks that inference is
/// still running.
const SEND_POLL: Duration = Duration::from_millis(100);
/// Longest single sleep while pacing, so that a stop request is seen soon.
const PACING_SLICE: Duration = Duration::from_millis(50);
/// A replay this far behind its schedule restarts the schedule instead of
/// rushing to catch up.
const PACING_SLACK: Duration = Duration::from_secs(1);

/// How a run is played.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Replay recordings at their own frame rate (real time, frames may be
    /// dropped); otherwise as fast as inference allows, dropping none.
    pub pace: bool,
    /// How the sector is chosen.
    pub sector: SectorMode,
    /// Set from another thread (a signal handler) to stop the run.
    pub stop: Arc<AtomicBool>,
}

/// The stages a run connects.
pub struct Stages<'a> {
    /// Where frames come from.
    pub source: Box<dyn FrameSource>,
    /// The network.
    pub model: &'a LusNet,
    /// Where frames are shown.
    pub renderer: Box<dyn Renderer>,
    /// The exam at the bedside: it sees every scored frame and every
    /// command ([`Session::default`] when no exam is run).
    pub session: &'a mut Session,
    /// The clinician's keys, buttons and taps
    /// ([`crossbeam_channel::never`] when nobody is there).
    pub inputs: Receiver<Input>,
    /// Where results are kept.
    pub recorder: Recorder,
    /// Who hears that the run is alive (a service manager's watchdog).
    pub heartbeat: Option<Box<dyn Heartbeat>>,
}

/// Hears from the output thread, after every batch of frames and at least
/// every quarter second while none comes, how many frames were recorded.
/// A hung stage stops the beats; a service manager's watchdog then
/// restarts the program.
pub trait Heartbeat: Send {
    /// The run is alive; `recorded` frames so far.
    fn beat(&mut self, recorded: u64);
}

/// A frame on its way from capture to inference.
struct Captured {
    clip: Arc<str>,
    frame: GrayFrame,
}

/// What the capture thread hands back.
#[derive(Default)]
struct CaptureEnd {
    end: Option<EndReason>,
    captured: u64,
    corrupt: u64,
    no_signal: u64,
    dropped: u64,
    clock: StageClock,
}

/// What inference hands the output stage for each frame it took.
enum Outcome {
    /// The frame was scored.
    Scored(ScoredFrame),
    /// The frame gets no score, and why.
    Rejected(RejectedFrame),
    /// The clip's sector was locked after frames were scored on a
    /// provisional one; these are its scores with those that agree counted.
    Settled {
        /// The clip.
        clip: Arc<str>,
        /// Its locked sector (`None`: none was found).
        locked: Option<Roi>,
        /// Its scores.
        scores: ScoreUpdate,
    },
}

impl Outcome {
    /// The frame it carries, if any.
    fn frame(&self) -> Option<&GrayFrame> {
        match self {
            Outcome::Scored(scored) => Some(&scored.frame),
            Outcome::Rejected(rejected) => Some(&rejected.frame),
            Outcome::Settled { .. } => None,
        }
    }
}

/// What the inference thread hands back.
#[derive(Default)]
struct InferenceEnd {
    failure: Option<EndReason>,
    rejected: BTreeMap<&'static str, u64>,
    scored: u64,
    preprocess: StageClock,
    inference: StageClock,
    scoring: StageClock,
}

/// What the output thread hands back.
struct OutputEnd {
    recorder: Recorder,
    rendered: u64,
    render: StageClock,
    end_to_end: StageClock,
    errors: Vec<String>,
}

/// Plays `source` through the model to the outputs until the stream ends,
/// fails, or `options.stop` is set. Always returns a report: a failure is
/// recorded in [`RunReport::end`], with everything scored before it.
pub fn run(
    stages: Stages<'_>,
    options: &RunOptions,
    source_name: &str,
    model_name: &str,
) -> RunReport {
    let Stages {
        source,
        model,
        renderer,
        session,
        inputs,
        recorder,
        heartbeat,
    } = stages;
    let started = Instant::now();
    let (frame_tx, frame_rx) = bounded::<Captured>(CAPTURE_QUEUE);
    let (scored_tx, scored_rx) = bounded::<Outcome>(OUTPUT_QUEUE);
    let realtime = options.pace || source.frame_rate().is_none();
    // Capture holds a receiver of its own queue (to drop the oldest frame),
    // so it cannot see inference hang up: inference raises this flag instead.
    let inference_done = AtomicBool::new(false);
    let (capture, inference, output) = std::thread::scope(|scope| {
        let drain = frame_rx.clone();
        let link = CaptureLink {
            frames: frame_tx,
            drain,
            inference_done: &inference_done,
        };
        let capture = scope.spawn(|| capture_stage(source, link, realtime, options));
        let inference = scope.spawn(|| {
            let _raise = RaiseOnDrop(&inference_done);
            inference_stage(model, frame_rx, scored_tx, options.sector)
        });
        let output = Output {
            session,
            inputs,
            renderer,
            display_ok: true,
            errors: Vec::new(),
        };
        let output = scope.spawn(|| output_stage(scored_rx, output, recorder, heartbeat));
        (
            capture.join().unwrap_or_else(|_| CaptureEnd {
                end: Some(EndReason::SourceFailed {
                    message: "the capture thread panicked".into(),
                }),
                ..CaptureEnd::default()
            }),
            inference.join().unwrap_or_else(|_| InferenceEnd {
                failure: Some(EndReason::ModelFailed {
                    message: "the inference thread panicked".into(),
                }),
                ..InferenceEnd::default()
            }),
            output.join(),
        )
    });
    let wall = started.elapsed().as_secs_f64();
    let (recorded, rendered, render, end_to_end) = match output {
        Ok(out) => {
            let mut recorded = out.recorder.finish();
            recorded.errors.extend(out.errors);
            (recorded, out.rendered, out.render, out.end_to_end)
        }
        Err(_) => (
            Recorded {
                errors: vec!["the output thread panicked".to_string()],
                ..Recorded::default()
            },
            0,
            StageClock::default(),
            StageClock::default(),
        ),
    };
    let Recorded {
        clips,
        unscored,
        errors: mut output_errors,
    } = recorded;
    output_errors.dedup();
    let clocks = StageClocks {
        capture: capture.clock,
        preprocess: inference.preprocess,
        inference: inference.inference,
        scoring: inference.scoring,
        render,
        end_to_end,
    };
    RunReport {
        source: source_name.to_string(),
        model: model_name.to_string(),
        precision: model.precision().name(),
        end: inference
            .failure
            .or(capture.end)
            .unwrap_or(EndReason::EndOfStream),
        clips,
        unscored,
        frames: FrameCounts {
            captured: capture.captured,
            corrupt: capture.corrupt,
            no_signal: capture.no_signal,
            dropped: capture.dropped,
            rejected: inference.rejected.values().sum(),
            scored: inference.scored,
            rendered,
        },
        rejected: inference
            .rejected
            .iter()
            .map(|(&reason, &n)| (reason.to_string(), n))
            .collect(),
        latency: clocks.stats(),
        fps: if wall > 0.0 {
            inference.scored as f64 / wall
        } else {
            0.0
        },
        wall_s: wall,
        output_errors,
    }
}

/// Sets its flag when dropped, even by a panic.
struct RaiseOnDrop<'a>(&'a AtomicBool);

impl Drop for RaiseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The capture thread's end of the queue to inference.
struct CaptureLink<'a> {
    frames: Sender<Captured>,
    /// A receiver of the same queue, to drop its oldest frame.
    drain: Receiver<Captured>,
    /// Raised when the inference thread has stopped.
    inference_done: &'a AtomicBool,
}

impl CaptureLink<'_> {
    /// Real time: never waits; when the queue is full, drops its oldest
    /// frame (counted in `dropped`). Returns `false` once inference stopped.
    fn send_newest(&self, item: Captured, dropped: &mut u64) -> bool {
        let mut item = item;
        while !self.inference_done.load(Ordering::SeqCst) {
            match self.frames.try_send(item) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if self.drain.try_recv().is_ok() {
                        *dropped += 1;
                    }
                    item = back;
                }
            }
        }
        false
    }

    /// Not real time: waits for room, dropping nothing. Returns `false`
    /// once inference stopped.
    fn send_waiting(&self, item: Captured) -> bool {
        let mut item = item;
        while !self.inference_done.load(Ordering::SeqCst) {
            match self.frames.send_timeout(item, SEND_POLL) {
                Ok(()) => return true,
                Err(SendTimeoutError::Disconnected(_)) => return false,
                Err(SendTimeoutError::Timeout(back)) => item = back,
            }
        }
        false
    }
}

/// Reads the source until it ends, fails or a stop is requested.
fn capture_stage(
    mut source: Box<dyn FrameSource>,
    link: CaptureLink<'_>,
    realtime: bool,
    options: &RunOptions,
) -> CaptureEnd {
    let mut out = CaptureEnd::default();
    let mut pacer = Pacer::default();
    let mut clip: Option<Arc<str>> = None;
    out.end = loop {
        if options.stop.load(Ordering::Relaxed) {
            break Some(EndReason::Interrupted);
        }
        let asked = Instant::now();
        let mut frame = match source.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break Some(EndReason::EndOfStream),
            Err(e) if e.is_frame_error() => {
                out.corrupt += 1;
                warn_sparsely(out.corrupt, &e.to_string());
                continue;
            }
            Err(e) if e.is_signal_loss() => {
                // The source is getting its device back; the display
                // says NO SIGNAL meanwhile.
                out.no_signal += 1;
                warn_sparsely(out.no_signal, &e.to_string());
                continue;
            }
            Err(e) => {
                log::error!("{e}");
                break Some(EndReason::SourceFailed {
                    message: e.to_string(),
                });
            }
        };
        out.clock.since(asked);
        out.captured += 1;
        if clip.as_deref() != Some(source.clip_name()) {
            clip = Some(Arc::from(source.clip_name()));
            pacer = Pacer::default();
        }
        if options.pace
            && let Some(fps) = source.frame_rate()
        {
            pacer.wait(fps, &options.stop);
            // A replayed frame "arrives" when its time comes.
            frame.captured = Instant::now();
        }
        let item = Captured {
            clip: clip.clone().unwrap_or_else(|| Arc::from("")),
            frame,
        };
        let delivered = if realtime {
            link.send_newest(item, &mut out.dropped)
        } else {
            link.send_waiting(item)
        };
        if !delivered {
            // Inference has stopped; its reason is in its own report.
            break None;
        }
    };
    out
}

/// Real-time replay: releases frame `n` of a clip at `n / fps` seconds.
#[derive(Default)]
struct Pacer {
    due: Option<Instant>,
}

impl Pacer {
    fn wait(&mut self, fps: f64, stop: &AtomicBool) {
        let period = Duration::from_secs_f64(1.0 / fps.clamp(1.0, 1000.0));
        let now = Instant::now();
        let due = *self.due.get_or_insert(now);
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            if left.is_zero() || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(left.min(PACING_SLICE));
        }
        let behind = now.saturating_duration_since(due) > PACING_SLACK;
        self.due = Some(if behind { now } else { due } + period);
    }
}

/// Sector, checks, crop, network and scores for every frame that reaches
/// it; a frame that fails a check is passed on as rejected.
fn inference_stage(
    model: &LusNet,
    frames: Receiver<Captured>,
    outcomes: Sender<Outcome>,
    sector: SectorMode,
) -> InferenceEnd {
    let mut out = InferenceEnd::default();
    let meta = model.meta();
    let mut clip = ClipState::new(Arc::from(""), sector, meta);
    let mut ready = Vec::new();
    for Captured { clip: name, frame } in frames.iter() {
        if name != clip.name {
            clip.tracker.finish(&mut ready);
            score_ready(model, &mut clip, &mut ready, &outcomes, &mut out);
            clip = ClipState::new(name, sector, meta);
        }
        let started = Instant::now();
        if let Err(mismatch) = clip.tracker.push(frame, &mut ready) {
            let count = out.count_rejection(Rejection::SizeChanged);
            warn_sparsely(count, &format!("{}: {mismatch}: skipped", clip.name));
        }
        out.preprocess.since(started);
        score_ready(model, &mut clip, &mut ready, &outcomes, &mut out);
        if out.failure.is_some() {
            return out;
        }
    }
    clip.tracker.finish(&mut ready);
    score_ready(model, &mut clip, &mut ready, &outcomes, &mut out);
    out
}

impl InferenceEnd {
    /// Counts a rejected frame; returns how many were rejected for that
    /// reason so far.
    fn count_rejection(&mut self, reason: Rejection) -> u64 {
        let count = self.rejected.entry(reason.key()).or_default();
        *count += 1;
        *count
    }
}

/// Scores the frames whose sector search is over and passes them on, or
/// passes them on as rejected; stops at the first failure.
fn score_ready(
    model: &LusNet,
    clip: &mut ClipState,
    ready: &mut Vec<Tracked>,
    outcomes: &Sender<Outcome>,
    out: &mut InferenceEnd,
) {
    for tracked in ready.drain(..) {
        if out.failure.is_some() {
            continue;
        }
        let (frame, roi, provisional) = match tracked {
            Tracked::Frame {
                frame,
                sector,
                provisional,
            } => (frame, sector, provisional),
            Tracked::Locked(locked) => {
                if let Some(scores) = clip.scores.settle(locked) {
                    let settled = Outcome::Settled {
                        clip: clip.name.clone(),
                        locked,
                        scores,
                    };
                    if outcomes.send(settled).is_err() {
                        out.failure = Some(EndReason::OutputFailed {
                            message: "the output stage stopped".into(),
                        });
                    }
                }
                continue;
            }
        };
        let outcome = match score_frame(model, clip, frame, roi, provisional, out) {
            Ok(Ok(scored)) => Outcome::Scored(scored),
            Ok(Err(rejected)) => {
                let count = out.count_rejection(rejected.reason);
                let message = format!("{}: frame rejected: {}", clip.name, rejected.reason);
                warn_sparsely(count, &message);
                Outcome::Rejected(rejected)
            }
            Err(e) => {
                log::error!("{e}");
                out.failure = Some(EndReason::ModelFailed {
                    message: e.to_string(),
                });
                continue;
            }
        };
        if outcomes.send(outcome).is_err() {
            out.failure = Some(EndReason::OutputFailed {
                message: "the output stage stopped".into(),
            });
        }
    }
}

/// Logs the 1st, 2nd, 4th, 8th… occurrence of a recurring problem, so that
/// a stream of bad frames cannot flood the log.
fn warn_sparsely(count: u64, message: &str) {
    if count.is_power_of_two() {
        log::warn!("{message} ({count} so far)");
    }
}

/// The state that belongs to one clip.
struct ClipState {
    name: Arc<str>,
    tracker: SectorTracker,
    gate: FrameGate,
    history: FrameHistory,
    scores: ClipTracker,
}

impl ClipState {
    fn new(name: Arc<str>, sector: SectorMode, meta: &ModelMeta) -> Self {
        Self {
            name,
            tracker: SectorTracker::new(sector),
            gate: FrameGate::new(),
            history: FrameHistory::new(meta.history_step),
            scores: ClipTracker::new(meta.seg_classes.len()),
        }
    }
}

/// Checks, crops, runs and scores one frame; `Ok(Err(_))` when the frame
/// gets no score.
fn score_frame(
    model: &LusNet,
    clip: &mut ClipState,
    frame: GrayFrame,
    sector: Option<Roi>,
    provisional: bool,
    out: &mut InferenceEnd,
) -> Result<Result<ScoredFrame, RejectedFrame>, crate::model::ModelError> {
    let started = Instant::now();
    let size = model.meta().input_size;
    clip.history.push(&frame);
    let admitted = clip.gate.admit(&frame, sector, size);
    let (sector, input) = match admitted {
        Ok((sector, input)) => {
            let input = clip.history.input(input, sector, size);
            out.preprocess.since(started);
            (sector, input)
        }
        Err(reason) => {
            out.preprocess.since(started);
            return Ok(Err(RejectedFrame {
                clip: clip.name.clone(),
                frame,
                reason,
            }));
        }
    };
    let started = Instant::now();
    let prediction = model.predict(&[&input])?.pop().ok_or_else(|| {
        crate::model::ModelError::Invariant("the model returned no prediction".into())
    })?;
    out.inference.since(started);
    let started = Instant::now();
    let scores = if provisional {
        clip.scores.update_provisional(&prediction, sector)
    } else {
        clip.scores.update(&prediction)
    };
    out.scoring.since(started);
    out.scored += 1;
    Ok(Ok(ScoredFrame {
        clip: clip.name.clone(),
        frame,
        sector,
        provisional,
        prediction,
        scores,
    }))
}

/// Records every scored frame and hands it to the exam session; carries
/// out the clinician's inputs; displays the newest of the frames waiting.
fn output_stage(
    scored: Receiver<Outcome>,
    mut output: Output<'_>,
    mut recorder: Recorder,
    mut heartbeat: Option<Box<dyn Heartbeat>>,
) -> OutputEnd {
    let mut render = StageClock::default();
    let mut end_to_end = StageClock::default();
    let mut rendered = 0;
    let mut waiting = Vec::with_capacity(OUTPUT_QUEUE + 1);
    let mut last_frame = Instant::now();
    let mut recorded = 0;
    loop {
        if let Some(heartbeat) = heartbeat.as_mut() {
            heartbeat.beat(recorded);
        }
        let first = match scored.recv_timeout(IDLE_TICK) {
            Ok(frame) => frame,
            Err(RecvTimeoutError::Timeout) => {
                output.take_inputs();
                let since_last = last_frame.elapsed();
                output.display(|renderer, session| renderer.idle(since_last, session));
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        last_frame = Instant::now();
        waiting.push(first);
        waiting.extend(scored.try_iter());
        output.take_inputs();
        for outcome in &waiting {
            match outcome {
                Outcome::Scored(frame) => {
                    recorder.record(frame);
                    if frame.provisional {
                        let (prediction, sector) = (&frame.prediction, frame.sector);
                        output
                            .session
                            .observe_provisional(prediction, &frame.frame, sector);
                    } else {
                        output.session.observe(&frame.prediction, &frame.frame);
                    }
                    recorded += 1;
                }
                Outcome::Rejected(frame) => {
                    recorder.reject(frame);
                    recorded += 1;
                }
                Outcome::Settled {
                    clip,
                    locked,
                    scores,
                } => {
                    recorder.settle(clip, *locked, scores);
                    output.session.settle(*locked);
                }
            }
        }
        let newest = waiting.iter().rev().find(|o| o.frame().is_some());
        if let Some(newest) = newest {
            let started = Instant::now();
            let shown = output.display(|renderer, session| match newest {
                Outcome::Scored(frame) => renderer.show(frame, session),
                Outcome::Rejected(frame) => renderer.reject(frame, session),
                Outcome::Settled { .. } => Ok(false),
            });
            if shown {
                render.since(started);
                rendered += 1;
            }
        }
        for outcome in waiting.drain(..) {
            if let Some(frame) = outcome.frame() {
                end_to_end.since(frame.captured);
            }
        }
    }
    output.take_inputs();
    output.display(|renderer, session| renderer.finish(session));
    OutputEnd {
        recorder,
        rendered,
        render,
        end_to_end,
        errors: output.errors,
    }
}

/// The exam session and the display, as the output thread drives them.
struct Output<'s> {
    session: &'s mut Session,
    inputs: Receiver<Input>,
    renderer: Box<dyn Renderer>,
    /// Cleared when the display fails: it is not called again, and the
    /// session goes on without it.
    display_ok: bool,
    errors: Vec<String>,
}

impl Output<'_> {
    /// Takes the worklist's answer, if it came, and carries out the
    /// clinician's inputs that are waiting. A tap means
    /// what the screen shows where it landed, so without a working display
    /// only keys and buttons count.
    fn take_inputs(&mut self) {
        self.session.poll();
        while let Ok(input) = self.inputs.try_recv() {
            let command = match input {
                Input::Command(command) => Some(command),
                Input::Tap { x, y } => {
                    self.display(|renderer, session| Ok(renderer.tap(x, y, session)))
                }
            };
            if let Some(command) = command {
                self.session.command(command);
            }
        }
    }

    /// Calls the display unless it has failed; the first error or panic
    /// turns it off and is reported. Returns what the call did, or the
    /// default (nothing drawn, no command) without a display.
    fn display<T: Default>(
        &mut self,
        call: impl FnOnce(&mut dyn Renderer, &Session) -> Result<T, DisplayError>,
    ) -> T {
        if !self.display_ok {
            return T::default();
        }
        let (renderer, session) = (self.renderer.as_mut(), &*self.session);
        match guarded(|| call(renderer, session)) {
            Ok(done) => done,
            Err(e) => {
                log::error!("display stopped: {e}");
                self.errors.push(format!("display: {e}"));
                self.display_ok = false;
                T::default()
            }
        }
    }
}

/// Runs a display call, turning a panic inside a backend into an error, so
/// that a broken display can never stop the recording.
fn guarded<T>(call: impl FnOnce() -> Result<T, DisplayError>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the display backend panicked".into()),
    }
}
