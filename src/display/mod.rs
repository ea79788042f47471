//! Showing scored frames: the display stage.
//!
//! Every backend implements [`Renderer`], so the pipeline does not know
//! whether frames go to a screen or to files. Drawing is done with
//! `embedded-graphics` on a [`Canvas`] (an in-memory `DrawTarget`); a
//! [`Surface`] then shows the finished picture.
//!
//! * [`Bedside`] is the clinician's screen and exam workflow
//!   ([`ScreenRenderer`] draws it). Its surfaces: the Linux framebuffer
//!   (`fb:/dev/fb0`, [`Framebuffer`]) and PNG files (`png:DIR`,
//!   [`PngScreens`]); `auto` takes `/dev/fb0` when it opens.
//! * `frames:DIR` writes annotated frames and a contact sheet
//!   ([`PngDisplay`]); `none` shows nothing.

mod annotate;
mod bedside;
mod fb;
mod png;
mod screen;

pub use annotate::{Canvas, annotate, class_colour, score_colour};
pub use bedside::{Bedside, ExamOptions, MIN_ZONE_HOLD, NO_SIGNAL_AFTER, PngScreens, Surface};
pub use fb::{FbGeometry, Framebuffer, PixelFormat, Rotation};
pub use png::PngDisplay;
pub use screen::{LOW_CONFIDENCE, ScreenKind, ScreenRenderer, ScreenState};

use crate::exam::Command;
use crate::scoring::ScoredFrame;
use crossbeam_channel::Receiver;
use embedded_graphics::prelude::Size;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a display could not show a frame.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// A file could not be written.
    #[error("{path}: {cause}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        cause: std::io::Error,
    },
    /// A display device that cannot be used as it is.
    #[error("display {path}: {reason}")]
    Device {
        /// The device.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A `--display` specification that names no known backend.
    #[error(
        "unknown display '{0}' (use auto, none, png:DIR, frames:DIR or fb:/dev/fbN[,rotate=90])"
    )]
    Spec(String),
}

/// Something that shows scored frames.
pub trait Renderer: Send {
    /// Shows one frame. Returns whether it drew anything: a backend may
    /// show only some frames (every Nth, or none at all).
    fn show(&mut self, frame: &ScoredFrame) -> Result<bool, DisplayError>;

    /// Called regularly while no frame arrives, with the time since the
    /// last one (a live screen says NO SIGNAL). Returns whether it drew.
    fn idle(&mut self, _since_last: Duration) -> Result<bool, DisplayError> {
        Ok(false)
    }

    /// Called once after the last frame, to finish any output.
    fn finish(&mut self) -> Result<(), DisplayError>;
}

/// The display that shows nothing (a terminal summary is printed instead).
pub struct NoDisplay;

impl Renderer for NoDisplay {
    fn show(&mut self, _frame: &ScoredFrame) -> Result<bool, DisplayError> {
        Ok(false)
    }

    fn finish(&mut self) -> Result<(), DisplayError> {
        Ok(())
    }
}

/// Which display to open, as written after `--display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplaySpec {
    /// No display.
    None,
    /// The bedside screen, written as PNG files into a folder.
    Png(PathBuf),
    /// Annotated frames and a contact sheet, written into a folder.
    Frames(PathBuf),
    /// The bedside screen on a Linux framebuffer device.
    Framebuffer {
        /// The device, e.g. `/dev/fb0`.
        path: PathBuf,
        /// How far the picture is turned on the panel.
        rotation: Rotation,
    },
    /// The first display that works: `/dev/fb0`, else none.
    Auto,
}

impl std::str::FromStr for DisplaySpec {
    type Err = DisplayError;

    /// `none`, `auto`, `png:DIR`, `frames:DIR` or `fb:/dev/fbN[,rotate=90]`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        match spec.split_once(':') {
            None if spec == "none" => Ok(DisplaySpec::None),
            None if spec == "auto" => Ok(DisplaySpec::Auto),
            Some(("png", dir)) if !dir.is_empty() => Ok(DisplaySpec::Png(dir.into())),
            Some(("frames", dir)) if !dir.is_empty() => Ok(DisplaySpec::Frames(dir.into())),
            Some(("fb", rest)) if !rest.is_empty() => {
                let (path, options) = rest.split_once(',').unwrap_or((rest, ""));
                let rotation = match options.split_once('=') {
                    None if options.is_empty() => Rotation::R0,
                    Some(("rotate", angle)) => angle.parse()?,
                    _ => return Err(DisplayError::Spec(spec.to_string())),
                };
                Ok(DisplaySpec::Framebuffer {
                    path: path.into(),
                    rotation,
                })
            }
            _ => Err(DisplayError::Spec(spec.to_string())),
        }
    }
}

/// What a display needs besides its specification.
pub struct DisplaySetup {
    /// Segmentation class names, background first.
    pub classes: Vec<String>,
    /// Draw one frame in this many (the file backends).
    pub every: u64,
    /// Size of the screen for the PNG backend.
    pub screen: Size,
    /// The exam protocol and journal, if an exam may be run.
    pub exam: Option<ExamOptions>,
    /// The clinician's commands (keys, buttons).
    pub commands: Receiver<Command>,
}

impl DisplaySpec {
    /// Opens the display.
    pub fn open(&self, setup: DisplaySetup) -> Result<Box<dyn Renderer>, DisplayError> {
        let bedside = |surface: Box<dyn Surface>, setup: DisplaySetup| -> Box<dyn Renderer> {
            Box::new(Bedside::new(
                surface,
                &setup.classes,
                setup.exam,
                setup.commands,
            ))
        };
        Ok(match self {
            DisplaySpec::None => Box::new(NoDisplay),
            DisplaySpec::Frames(dir) => {
                Box::new(PngDisplay::create(dir, &setup.classes, setup.every)?)
            }
            DisplaySpec::Png(dir) => {
                let surface = PngScreens::create(dir, setup.screen, setup.every)?;
                bedside(Box::new(surface), setup)
            }
            DisplaySpec::Framebuffer { path, rotation } => {
                bedside(Box::new(Framebuffer::open(path, *rotation)?), setup)
            }
            DisplaySpec::Auto => match Framebuffer::open(Path::new("/dev/fb0"), Rotation::R0) {
                Ok(fb) => bedside(Box::new(fb), setup),
                Err(e) => {
                    log::warn!("--display auto: {e}; showing nothing");
                    Box::new(NoDisplay)
                }
            },
        })
    }
}
