//! Showing scored frames: the display stage.
//!
//! Every backend implements [`Renderer`], so the pipeline does not know
//! whether frames go to a screen or to files. Drawing is done with
//! `embedded-graphics` on a [`Canvas`] (an in-memory `DrawTarget`); a
//! [`Surface`] then shows the finished picture.
//!
//! * [`Bedside`] is the clinician's screen ([`ScreenPainter`] draws it):
//!   the live frame with the exam [`Session`]'s zones and scores. Its
//!   surfaces: the Linux framebuffer (`fb:/dev/fb0`, [`Framebuffer`]),
//!   DRM/KMS dumb buffers
//!   (`drm:/dev/dri/card0`, [`Kms`]) and PNG files (`png:DIR`,
//!   [`PngScreens`]), and with the `window` feature a desktop window
//!   (`window`, `WindowSurface`); `auto` takes the first that opens of
//!   card0, fb0 and a window.
//! * `frames:DIR` writes annotated frames and a contact sheet
//!   ([`AnnotatedFrames`]); `none` shows nothing.

mod annotate;
mod bedside;
mod fb;
mod frames;
mod kms;
mod png;
mod screen;
mod surface;
#[cfg(feature = "window")]
mod window;

pub use annotate::{Canvas, annotate, class_colour, score_colour};
pub use bedside::{Bedside, NO_SIGNAL_AFTER};
pub use fb::{FbGeometry, Framebuffer, PixelFormat};
pub use frames::AnnotatedFrames;
pub use kms::Kms;
pub use png::PngScreens;
pub use screen::{
    LOW_CONFIDENCE, ScreenKind, ScreenPainter, ScreenState, WorklistView, tap_command,
    worklist_row_at,
};
pub use surface::{Rotation, Surface};
#[cfg(feature = "window")]
pub use window::WindowSurface;

use crate::exam::{Command, Session};
use crate::input::Input;
use crate::preprocess::quality::RejectedFrame;
use crate::scoring::ScoredFrame;
use crate::spec::{self, SpecError};
use crossbeam_channel::Sender;
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
        "unknown display '{0}' (use auto, none, window, png:DIR, frames:DIR, fb:/dev/fbN or \
         drm:/dev/dri/cardN, optionally with ,rotate=90|180|270)"
    )]
    Spec(String),
    /// A display whose options are wrong.
    #[error("display '{spec}': {cause}")]
    Options {
        /// The `--display` specification.
        spec: String,
        /// What is wrong with its options.
        cause: SpecError,
    },
    /// Something that only the bedside screen does (an exam, keys) was
    /// asked of a display that is not it.
    #[error(
        "{what} needs the bedside screen, and {display}; use fb:/dev/fbN, drm:/dev/dri/cardN, \
         window, png:DIR or auto"
    )]
    NotBedside {
        /// What was asked, e.g. `--exam`.
        what: String,
        /// What the display is instead.
        display: String,
    },
}

/// Creates the output folder of a file backend.
fn create_dir(dir: &Path) -> Result<(), DisplayError> {
    std::fs::create_dir_all(dir).map_err(|cause| DisplayError::Write {
        path: dir.to_path_buf(),
        cause,
    })
}

/// Something that shows scored frames. Each call gets the exam
/// [`Session`], whose state a bedside screen paints.
pub trait Renderer: Send {
    /// Shows one frame. Returns whether it drew anything: a backend may
    /// show only some frames (every Nth, or none at all).
    fn show(&mut self, frame: &ScoredFrame, session: &Session) -> Result<bool, DisplayError>;

    /// Shows a frame that gets no score, and why (a live screen says NO
    /// IMAGE and shows no score). Returns whether it drew.
    fn reject(&mut self, _frame: &RejectedFrame, _session: &Session) -> Result<bool, DisplayError> {
        Ok(false)
    }

    /// Called regularly while no frame arrives, with the time since the
    /// last one (a live screen says NO SIGNAL). Returns whether it drew.
    fn idle(&mut self, _since_last: Duration, _session: &Session) -> Result<bool, DisplayError> {
        Ok(false)
    }

    /// What a tap at (`x`, `y`), as fractions of the panel's width and
    /// height, asks for: what the screen shows there. None on a display
    /// without a screen.
    fn tap(&mut self, _x: f32, _y: f32, _session: &Session) -> Option<Command> {
        None
    }

    /// Called once after the last frame, to finish any output.
    fn finish(&mut self, session: &Session) -> Result<(), DisplayError>;
}

/// The display that shows nothing (a terminal summary is printed instead).
pub struct NoDisplay;

impl Renderer for NoDisplay {
    fn show(&mut self, _frame: &ScoredFrame, _session: &Session) -> Result<bool, DisplayError> {
        Ok(false)
    }

    fn finish(&mut self, _session: &Session) -> Result<(), DisplayError> {
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
    /// The bedside screen on a DRM/KMS card (dumb buffers).
    Kms {
        /// The card, e.g. `/dev/dri/card0`.
        path: PathBuf,
        /// How far the picture is turned on the panel.
        rotation: Rotation,
    },
    /// The bedside screen in a desktop window (cargo feature `window`).
    Window,
    /// The first display that works: `/dev/dri/card0`, then `/dev/fb0`,
    /// then a desktop window (with the `window` feature), else none.
    Auto,
}

impl std::str::FromStr for DisplaySpec {
    type Err = DisplayError;

    /// `none`, `auto`, `png:DIR`, `frames:DIR`, `fb:/dev/fbN[,rotate=90]` or
    /// `drm:/dev/dri/cardN[,rotate=90]`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        match spec.split_once(':') {
            None if spec == "none" => Ok(DisplaySpec::None),
            None if spec == "auto" => Ok(DisplaySpec::Auto),
            None if spec == "window" => Ok(DisplaySpec::Window),
            Some(("png", dir)) if !dir.is_empty() => Ok(DisplaySpec::Png(dir.into())),
            Some(("frames", dir)) if !dir.is_empty() => Ok(DisplaySpec::Frames(dir.into())),
            Some((kind @ ("fb" | "drm"), rest)) if !rest.is_empty() => {
                let (path, options) = rest.split_once(',').unwrap_or((rest, ""));
                let mut rotation = Rotation::R0;
                for option in spec::options("display", options, &["rotate"]) {
                    rotation =
                        option
                            .and_then(|o| o.name())
                            .map_err(|cause| DisplayError::Options {
                                spec: spec.to_string(),
                                cause,
                            })?;
                }
                let path = path.into();
                Ok(if kind == "fb" {
                    DisplaySpec::Framebuffer { path, rotation }
                } else {
                    DisplaySpec::Kms { path, rotation }
                })
            }
            _ => Err(DisplayError::Spec(spec.to_string())),
        }
    }
}

/// A desktop window of the PNG screen size (`window` feature).
fn open_window(setup: &DisplaySetup) -> Result<Box<dyn Surface>, DisplayError> {
    #[cfg(feature = "window")]
    {
        Ok(Box::new(WindowSurface::open(
            setup.screen,
            setup.input_sender.clone(),
        )?))
    }
    #[cfg(not(feature = "window"))]
    {
        let _ = setup;
        Err(DisplayError::Device {
            path: "window".into(),
            reason: "this pleura was built without the `window` feature".into(),
        })
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
    /// Whether an exam is run: `auto` then refuses to show nothing.
    pub exam: bool,
    /// Where a window sends its keys and clicks.
    pub input_sender: Sender<Input>,
}

impl DisplaySpec {
    /// Refuses `what` (an exam, input devices) unless this display is the
    /// bedside screen, the only one that shows an exam and reads keys:
    /// `none` shows nothing and `frames:DIR` writes annotated frames.
    /// `auto` passes here; [`DisplaySpec::open`] refuses an exam when it
    /// finds no screen.
    pub fn check_bedside(&self, what: &str) -> Result<(), DisplayError> {
        let display = match self {
            DisplaySpec::None => "--display none shows nothing".to_string(),
            DisplaySpec::Frames(dir) => format!(
                "--display frames:{} writes annotated frames, not the bedside screen",
                dir.display()
            ),
            _ => return Ok(()),
        };
        Err(DisplayError::NotBedside {
            what: what.to_string(),
            display,
        })
    }

    /// Opens the display.
    pub fn open(&self, setup: DisplaySetup) -> Result<Box<dyn Renderer>, DisplayError> {
        let bedside = |surface: Box<dyn Surface>, setup: DisplaySetup| -> Box<dyn Renderer> {
            Box::new(Bedside::new(surface, &setup.classes))
        };
        Ok(match self {
            DisplaySpec::None => Box::new(NoDisplay),
            DisplaySpec::Frames(dir) => {
                Box::new(AnnotatedFrames::create(dir, &setup.classes, setup.every)?)
            }
            DisplaySpec::Png(dir) => {
                let surface = PngScreens::create(dir, setup.screen, setup.every)?;
                bedside(Box::new(surface), setup)
            }
            DisplaySpec::Framebuffer { path, rotation } => {
                bedside(Box::new(Framebuffer::open(path, *rotation)?), setup)
            }
            DisplaySpec::Kms { path, rotation } => {
                bedside(Box::new(Kms::open(path, *rotation)?), setup)
            }
            DisplaySpec::Window => bedside(open_window(&setup)?, setup),
            DisplaySpec::Auto => {
                let kms = Kms::open(Path::new("/dev/dri/card0"), Rotation::R0);
                let surface = kms
                    .map(|k| Box::new(k) as Box<dyn Surface>)
                    .or_else(|e| {
                        log::info!("--display auto: {e}");
                        Framebuffer::open(Path::new("/dev/fb0"), Rotation::R0)
                            .map(|f| Box::new(f) as Box<dyn Surface>)
                    })
                    .or_else(|e| {
                        log::info!("--display auto: {e}");
                        open_window(&setup)
                    });
                match surface {
                    Ok(surface) => bedside(surface, setup),
                    Err(e) if setup.exam => {
                        return Err(DisplayError::NotBedside {
                            what: "--exam".into(),
                            display: format!("--display auto found no screen ({e})"),
                        });
                    }
                    Err(e) => {
                        log::warn!("--display auto: {e}; showing nothing");
                        Box::new(NoDisplay)
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_specs_parse_with_their_options() {
        assert_eq!("auto".parse::<DisplaySpec>().unwrap(), DisplaySpec::Auto);
        assert_eq!(
            "fb:/dev/fb1,rotate=90".parse::<DisplaySpec>().unwrap(),
            DisplaySpec::Framebuffer {
                path: "/dev/fb1".into(),
                rotation: Rotation::R90
            }
        );
        assert_eq!(
            "drm:/dev/dri/card1".parse::<DisplaySpec>().unwrap(),
            DisplaySpec::Kms {
                path: "/dev/dri/card1".into(),
                rotation: Rotation::R0
            }
        );
        assert_eq!(
            "png:out".parse::<DisplaySpec>().unwrap(),
            DisplaySpec::Png("out".into())
        );
        assert_eq!(
            "window".parse::<DisplaySpec>().unwrap(),
            DisplaySpec::Window
        );
        for bad in [
            "fb:",
            "fb:/dev/fb0,rotate=45",
            "fb:/dev/fb0,flip",
            "windows",
            "png:",
        ] {
            assert!(bad.parse::<DisplaySpec>().is_err(), "{bad} accepted");
        }
    }
}
