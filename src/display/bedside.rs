//! The bedside display: the live screen and the exam workflow, shown on a
//! [`Surface`] (a framebuffer, or PNG files when headless).
//!
//! [`Bedside`] is a [`Renderer`]: the pipeline hands it every scored frame
//! and calls [`Renderer::idle`] when frames stop coming. It takes the
//! clinician's [`Command`]s from a channel (keys, buttons), keeps a clip
//! tracker per exam zone, records a zone when its score is stable, and
//! journals every recorded score before showing it.

use super::annotate::Canvas;
use super::screen::{ScreenKind, ScreenRenderer, ScreenState, tap_command};
use super::{DisplayError, Framebuffer, Renderer, Rotation};
use crate::atomic_write::{Durability, write_atomically};
use crate::exam::{Command, Journal, Protocol, ZoneScore};
use crate::input::Input;
use crate::preprocess::quality::RejectedFrame;
use crate::scoring::{ClipTracker, ScoredFrame};
use crossbeam_channel::Receiver;
use embedded_graphics::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// After this long without a frame the screen says NO SIGNAL (longer than
/// the sector lock at the start of a stream, about 32 frames).
pub const NO_SIGNAL_AFTER: Duration = Duration::from_millis(2500);
/// A selected zone is recorded by stability only after the probe was held
/// this long: frames that arrive in a burst cannot record it at once.
pub const MIN_ZONE_HOLD: Duration = Duration::from_secs(2);

/// Where a finished picture goes.
pub trait Surface: Send {
    /// The size of the upright picture.
    fn size(&self) -> Size;
    /// Shows one picture.
    fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError>;

    /// How far the picture is turned on the panel (taps are turned back).
    fn rotation(&self) -> Rotation {
        Rotation::R0
    }

    /// Shows the last picture of a run.
    fn present_last(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        self.present(canvas)
    }
}

impl Surface for Framebuffer {
    fn size(&self) -> Size {
        self.logical_size()
    }

    fn rotation(&self) -> Rotation {
        Framebuffer::rotation(self)
    }

    fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        Framebuffer::present(self, canvas)
    }
}

/// Screens written as PNG files (`screen-NNNNNN.png`, one in `every`
/// pictures, and `last.png` at the end), for headless runs and tests.
pub struct PngScreens {
    dir: PathBuf,
    size: Size,
    every: u64,
    shown: u64,
}

impl PngScreens {
    /// Creates `dir` if needed.
    pub fn create(dir: &Path, size: Size, every: u64) -> Result<Self, DisplayError> {
        super::create_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            size,
            every: every.max(1),
            shown: 0,
        })
    }

    fn write(&self, name: &str, canvas: &Canvas) -> Result<(), DisplayError> {
        let path = self.dir.join(name);
        write_atomically(&path, Durability::Unsynced, |w| {
            canvas
                .0
                .write_to(w, image::ImageFormat::Png)
                .map_err(std::io::Error::other)
        })
        .map_err(|cause| DisplayError::Write { path, cause })
    }
}

impl Surface for PngScreens {
    fn size(&self) -> Size {
        self.size
    }

    fn present(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        let result = if self.shown.is_multiple_of(self.every) {
            self.write(&format!("screen-{:06}.png", self.shown), canvas)
        } else {
            Ok(())
        };
        self.shown += 1;
        result
    }

    fn present_last(&mut self, canvas: &Canvas) -> Result<(), DisplayError> {
        self.write("last.png", canvas)
    }
}

/// The exam part of the bedside display.
pub struct ExamOptions {
    /// The protocol of exams started here.
    pub protocol: Protocol,
    /// The journal (opened, with any unfinished exam recovered).
    pub journal: Journal,
}

/// The live screen and exam workflow on a surface.
pub struct Bedside {
    surface: Box<dyn Surface>,
    canvas: Canvas,
    renderer: ScreenRenderer,
    state: ScreenState,
    classes: Vec<String>,
    exam: Option<ExamOptions>,
    inputs: Receiver<Input>,
    frozen: bool,
    summary: bool,
    /// Frames since the current zone was selected.
    zone: ClipTracker,
    /// Whether the current zone is recorded when its score is stable: the
    /// clinician selected it, and it was not recorded since (so a zone is
    /// never recorded from the probe still resting on the previous one).
    armed: bool,
    /// When the current zone was selected.
    zone_since: Instant,
    zone_stable: bool,
    zone_score: Option<ZoneScore>,
    last_frame: Option<Instant>,
}

impl Bedside {
    /// A bedside display on `surface`. `classes` names the segmentation
    /// classes; `inputs` brings the clinician's keys, buttons and taps.
    pub fn new(
        surface: Box<dyn Surface>,
        classes: &[String],
        exam: Option<ExamOptions>,
        inputs: Receiver<Input>,
    ) -> Self {
        let size = surface.size();
        let summary = exam
            .as_ref()
            .and_then(|e| e.journal.exam())
            .is_some_and(|e| e.finished);
        Self {
            canvas: Canvas::new(size.width, size.height),
            surface,
            renderer: ScreenRenderer::new(),
            state: ScreenState::default(),
            classes: classes.to_vec(),
            exam,
            inputs,
            frozen: false,
            summary,
            zone: ClipTracker::new(0),
            armed: false,
            zone_since: Instant::now(),
            zone_stable: false,
            zone_score: None,
            last_frame: None,
        }
    }

    /// Carries out the inputs waiting in the channel.
    fn handle_commands(&mut self) {
        while let Ok(input) = self.inputs.try_recv() {
            let command = match input {
                Input::Command(command) => command,
                Input::Tap { x, y } => {
                    let (x, y) = self.surface.rotation().panel_to_picture(x, y);
                    let size = self.canvas.size();
                    let point = Point::new(
                        (x * size.width as f32) as i32,
                        (y * size.height as f32) as i32,
                    );
                    let exam = self.exam.as_ref().and_then(|e| e.journal.exam());
                    match tap_command(size, point, exam) {
                        Some(command) if !self.summary => command,
                        _ => continue,
                    }
                }
            };
            match command {
                Command::ToggleFreeze => self.frozen = !self.frozen,
                _ => self.exam_command(command),
            }
        }
    }

    fn exam_command(&mut self, command: Command) {
        let Some(exam) = self.exam.as_mut() else {
            log::info!("no exam protocol given (--exam): {command:?} ignored");
            return;
        };
        let changed = match exam
            .journal
            .command(command, exam.protocol, self.zone_score)
        {
            Ok(changed) => {
                self.state.alert = None;
                changed
            }
            Err(e) => {
                log::error!("{e}");
                self.state.alert = Some("EXAM NOT SAVED");
                false
            }
        };
        log::info!(
            "{command:?}: {}, zone {:?}",
            if changed { "done" } else { "nothing to do" },
            exam.journal.exam().map(|e| e.current_name())
        );
        if !changed {
            return; // e.g. R before the zone has seen a frame: nothing moves
        }
        self.summary = command == Command::Finish;
        if command != Command::Finish {
            // Selecting a zone (or starting over) arms it; recording disarms
            // it. Either way its score starts afresh.
            self.armed = command != Command::Record;
            self.restart_zone();
        }
    }

    /// Starts scoring the current zone from scratch.
    fn restart_zone(&mut self) {
        self.zone = ClipTracker::new(0);
        self.zone_since = Instant::now();
        self.zone_stable = false;
        self.zone_score = None;
    }

    /// Feeds a frame to the current zone and records the zone when its
    /// score becomes stable.
    fn score_zone(&mut self, frame: &ScoredFrame) {
        let running = self
            .exam
            .as_ref()
            .and_then(|e| e.journal.exam())
            .is_some_and(|e| !e.finished);
        if !running {
            return;
        }
        let update = self.zone.update(&frame.prediction);
        let score = ZoneScore {
            score: update.clip.score,
            confidence: update.clip.confidence,
            manual: false,
        };
        self.zone_score = Some(score);
        self.zone_stable = update.stable;
        if update.stable
            && self.armed
            && self.zone_since.elapsed() >= MIN_ZONE_HOLD
            && let Some(exam) = self.exam.as_mut()
        {
            match exam.journal.record_stable(score) {
                Ok(recorded) => {
                    self.armed = !recorded;
                    self.state.alert = None;
                }
                Err(e) => {
                    log::error!("{e}");
                    self.state.alert = Some("EXAM NOT SAVED");
                }
            }
        }
    }

    fn draw(&mut self) -> Result<(), DisplayError> {
        self.paint();
        self.surface.present(&self.canvas)
    }

    fn paint(&mut self) {
        let exam = self.exam.as_ref().and_then(|e| e.journal.exam());
        self.state.recording = exam.is_some_and(|e| !e.finished);
        if self.summary {
            self.state.kind = ScreenKind::Summary;
        }
        self.state.hint = match exam {
            None => None,
            Some(e) if e.finished => Some("S: new exam"),
            Some(e) if e.zones[e.current].is_some() => Some("recorded. N: next zone"),
            Some(_) if self.armed => Some("hold: records when stable"),
            Some(_) => Some("N/P select, R record"),
        };
        if exam.is_some_and(|e| !e.finished)
            && let Some(zone) = self.zone_score
        {
            self.state.clip = (zone.score, zone.confidence);
            self.state.stable = self.zone_stable;
        }
        self.renderer
            .draw(&mut self.canvas, &self.state, exam, &self.classes);
    }
}

impl Renderer for Bedside {
    fn show(&mut self, frame: &ScoredFrame) -> Result<bool, DisplayError> {
        self.handle_commands();
        let now = Instant::now();
        if let Some(last) = self.last_frame {
            let gap = now.duration_since(last).as_secs_f32().max(1e-3);
            let fps = 1.0 / gap;
            self.state.fps = if self.state.fps > 0.0 {
                0.9 * self.state.fps + 0.1 * fps
            } else {
                fps
            };
        }
        self.last_frame = Some(now);
        self.state.latency_ms = frame.frame.captured.elapsed().as_secs_f32() * 1e3;
        if self.frozen {
            self.state.kind = ScreenKind::Frozen;
        } else {
            self.state.kind = ScreenKind::Live;
            self.state.show_frame(frame);
            self.score_zone(frame);
        }
        self.draw()?;
        Ok(true)
    }

    fn reject(&mut self, frame: &RejectedFrame) -> Result<bool, DisplayError> {
        self.handle_commands();
        self.last_frame = Some(Instant::now());
        self.state.latency_ms = frame.frame.captured.elapsed().as_secs_f32() * 1e3;
        if !self.frozen {
            self.state.show_rejected(frame);
        }
        self.draw()?;
        Ok(true)
    }

    fn idle(&mut self, since_last: Duration) -> Result<bool, DisplayError> {
        self.handle_commands();
        if since_last < NO_SIGNAL_AFTER && !self.summary {
            return Ok(false);
        }
        if !self.frozen {
            self.state.kind = ScreenKind::NoSignal;
        }
        self.draw()?;
        Ok(true)
    }

    fn finish(&mut self) -> Result<(), DisplayError> {
        self.handle_commands();
        self.paint();
        self.surface.present_last(&self.canvas)
    }
}
