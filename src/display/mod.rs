//! Showing scored frames: the display stage.
//!
//! Every backend implements [`Renderer`], so the pipeline does not know
//! whether frames go to a screen or to files. Drawing itself is done with
//! `embedded-graphics` on a [`Canvas`], so that any `DrawTarget` (a
//! framebuffer, a simulator window) can later show the same picture.
//!
//! Backends: `png:DIR` writes annotated frames and a contact sheet
//! ([`PngDisplay`]); `none` shows nothing.

mod annotate;
mod png;

pub use annotate::{Canvas, annotate, class_colour, score_colour};
pub use png::PngDisplay;

use crate::scoring::ScoredFrame;
use std::path::PathBuf;

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
    /// A `--display` specification that names no known backend.
    #[error("unknown display '{0}' (use png:DIR or none)")]
    Spec(String),
}

/// Something that shows scored frames.
pub trait Renderer: Send {
    /// Shows one frame. Returns whether it drew anything: a backend may
    /// show only some frames (every Nth, or none at all).
    fn show(&mut self, frame: &ScoredFrame) -> Result<bool, DisplayError>;

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
    /// Annotated PNG frames in a folder.
    Png(PathBuf),
}

impl std::str::FromStr for DisplaySpec {
    type Err = DisplayError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        match spec.split_once(':') {
            None if spec == "none" => Ok(DisplaySpec::None),
            Some(("png", dir)) if !dir.is_empty() => Ok(DisplaySpec::Png(dir.into())),
            _ => Err(DisplayError::Spec(spec.to_string())),
        }
    }
}

impl DisplaySpec {
    /// Opens the display. `classes` names the segmentation classes
    /// (background first); `every` is how often the PNG backend draws.
    pub fn open(&self, classes: &[String], every: u64) -> Result<Box<dyn Renderer>, DisplayError> {
        Ok(match self {
            DisplaySpec::None => Box::new(NoDisplay),
            DisplaySpec::Png(dir) => Box::new(PngDisplay::create(dir, classes, every)?),
        })
    }
}
