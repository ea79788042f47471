//! Where the bedside screen's finished picture goes, and how the panel is
//! mounted: every screen backend (framebuffer, DRM, window, PNG files) is
//! a [`Surface`].

use super::DisplayError;
use super::annotate::Canvas;
use crate::spec::{Named, SpecError};
use embedded_graphics::prelude::Size;

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

/// How far the picture is turned clockwise on the panel, as fbcon's
/// `rotate` (a portrait panel mounted on its side needs 90 or 270).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// Upright.
    #[default]
    R0,
    /// Turned a quarter clockwise: the picture's top row is the panel's
    /// right-most column.
    R90,
    /// Upside down.
    R180,
    /// Turned a quarter anticlockwise: the picture's top row is the
    /// panel's left-most column.
    R270,
}

impl Rotation {
    /// Where a point of the panel (as fractions of its width and height)
    /// lies on the upright picture: how a tap on a turned touchscreen
    /// finds what is drawn under the finger.
    pub fn panel_to_picture(self, x: f32, y: f32) -> (f32, f32) {
        match self {
            Rotation::R0 => (x, y),
            Rotation::R90 => (y, 1.0 - x),
            Rotation::R180 => (1.0 - x, 1.0 - y),
            Rotation::R270 => (1.0 - y, x),
        }
    }
}

impl Named for Rotation {
    const WHAT: &'static str = "rotation";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("0", Rotation::R0),
        ("90", Rotation::R90),
        ("180", Rotation::R180),
        ("270", Rotation::R270),
    ];
}

impl std::str::FromStr for Rotation {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}
