//! The bedside screen, shown on a [`Surface`] (a framebuffer, a DRM card,
//! a window, or PNG files when headless).
//!
//! [`Bedside`] is a [`Renderer`]: the pipeline hands it the newest scored
//! frame with the exam [`Session`], and calls [`Renderer::idle`] when
//! frames stop coming. It only paints: the session scores the zones and
//! writes the journal, so a screen that lags or fails loses no exam data.
//! A tap is turned into the command drawn where it landed.

use super::annotate::Canvas;
use super::screen::{
    ScreenKind, ScreenPainter, ScreenState, WorklistView, tap_command, worklist_row_at,
};
use super::surface::Surface;
use super::{DisplayError, Renderer};
use crate::exam::{Command, Handover, Picking, Session};
use crate::preprocess::quality::RejectedFrame;
use crate::scoring::ScoredFrame;
use embedded_graphics::prelude::*;
use std::time::{Duration, Instant};

/// After this long without a frame the screen says NO SIGNAL (longer than
/// the sector lock at the start of a stream, about 32 frames).
pub const NO_SIGNAL_AFTER: Duration = Duration::from_millis(2500);

/// The live screen on a surface: it paints each frame it is shown with
/// the exam [`Session`]'s state, and maps taps to commands.
pub struct Bedside {
    surface: Box<dyn Surface>,
    canvas: Canvas,
    painter: ScreenPainter,
    state: ScreenState,
    classes: Vec<String>,
    last_frame: Option<Instant>,
}

impl Bedside {
    /// A bedside screen on `surface`. `classes` names the segmentation
    /// classes.
    pub fn new(surface: Box<dyn Surface>, classes: &[String]) -> Self {
        let size = surface.size();
        Self {
            canvas: Canvas::new(size.width, size.height),
            surface,
            painter: ScreenPainter::new(),
            state: ScreenState::default(),
            classes: classes.to_vec(),
            last_frame: None,
        }
    }

    fn draw(&mut self, session: &Session) -> Result<(), DisplayError> {
        self.paint(session);
        self.surface.present(&self.canvas)
    }

    fn paint(&mut self, session: &Session) {
        let exam = session.exam();
        self.state.recording = session.recording();
        if session.summary() {
            self.state.kind = ScreenKind::Summary;
        }
        self.state.hint = match exam {
            None => None,
            Some(e) if e.finished => Some("S: new exam"),
            Some(e) if e.zones[e.current].is_some() => Some("recorded. N: next zone"),
            Some(_) if session.armed() => Some("hold: records when stable"),
            Some(_) => Some("N/P select, R record"),
        };
        if session.recording()
            && let Some(zone) = session.zone()
        {
            self.state.clip = (zone.score.score, zone.score.confidence);
            self.state.stable = zone.stable;
        }
        self.state.alert = session.unsaved().then_some("EXAM NOT SAVED");
        self.state.worklist = session.picking().map(|picking| match picking {
            Picking::Waiting => WorklistView {
                waiting: true,
                ..WorklistView::default()
            },
            Picking::Choosing { entries, selected } => WorklistView {
                rows: entries
                    .iter()
                    .map(|entry| {
                        format!(
                            "{}  {}  {}  {}",
                            entry.patient.name.replace('^', " ").trim(),
                            entry.patient.id,
                            entry.accession,
                            entry.description
                        )
                    })
                    .chain(["ANONYMOUS EXAM".to_string()])
                    .collect(),
                selected: *selected,
                waiting: false,
            },
        });
        if let Some(notice) = session.notice() {
            self.state.hint = Some(notice);
        }
        self.state.outbox = session
            .outbox()
            .map(|counts| (counts.pending, counts.sent, counts.failed));
        self.state.handover = session.handover().map(|handover| match handover {
            Handover::Queued => "QUEUED FOR THE HOSPITAL",
            Handover::NotQueued(_) => "NOT QUEUED: SEE THE LOG",
        });
        self.painter
            .draw(&mut self.canvas, &self.state, exam, &self.classes);
    }
}

impl Renderer for Bedside {
    fn show(&mut self, frame: &ScoredFrame, session: &Session) -> Result<bool, DisplayError> {
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
        if session.frozen() {
            self.state.kind = ScreenKind::Frozen;
        } else {
            self.state.kind = ScreenKind::Live;
            self.state.show_frame(frame);
        }
        self.draw(session)?;
        Ok(true)
    }

    fn reject(&mut self, frame: &RejectedFrame, session: &Session) -> Result<bool, DisplayError> {
        self.last_frame = Some(Instant::now());
        self.state.latency_ms = frame.frame.captured.elapsed().as_secs_f32() * 1e3;
        if !session.frozen() {
            self.state.show_rejected(frame);
        }
        self.draw(session)?;
        Ok(true)
    }

    fn idle(&mut self, since_last: Duration, session: &Session) -> Result<bool, DisplayError> {
        if since_last < NO_SIGNAL_AFTER && !session.summary() {
            return Ok(false);
        }
        if !session.frozen() {
            self.state.kind = ScreenKind::NoSignal;
        }
        self.draw(session)?;
        Ok(true)
    }

    fn tap(&mut self, x: f32, y: f32, session: &Session) -> Option<Command> {
        let (x, y) = self.surface.rotation().panel_to_picture(x, y);
        let size = self.canvas.size();
        let point = Point::new(
            (x * size.width as f32) as i32,
            (y * size.height as f32) as i32,
        );
        if session.picking().is_some() {
            let view = self.state.worklist.as_ref()?;
            return worklist_row_at(size, point, view).map(Command::Choose);
        }
        if session.summary() {
            return None;
        }
        tap_command(size, point, session.exam())
    }

    fn finish(&mut self, session: &Session) -> Result<(), DisplayError> {
        self.paint(session);
        self.surface.present_last(&self.canvas)
    }
}
