//! The bedside screen written as PNG files, for headless runs and tests:
//! a [`Surface`] like a panel, whose pictures are files.

use super::DisplayError;
use super::annotate::Canvas;
use super::surface::Surface;
use crate::atomic_write::{Durability, write_atomically};
use embedded_graphics::prelude::Size;
use std::path::{Path, PathBuf};

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
