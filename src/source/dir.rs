//! A folder of PNG or JPEG frames, played in file-name order as one clip.
//!
//! Frames are decoded one at a time, so a long folder costs the memory of
//! one frame. An unreadable image loses that frame only
//! ([`SourceError::BadFrame`]), and so does one whose header declares a
//! picture over [`crate::frame::MAX_SIDE`]: it is refused before its pixels
//! are allocated, so a small file that declares a huge picture costs
//! nothing.

use super::{FrameSource, SourceError};
use crate::frame::GrayFrame;
use std::path::{Path, PathBuf};

/// Replay rate of a folder of stills, which records none.
pub(super) const DIR_FRAME_RATE: f64 = 25.0;

/// Frames read from image files.
pub struct DirSource {
    name: String,
    files: Vec<PathBuf>,
    next: usize,
}

impl DirSource {
    /// Lists the PNG and JPEG files in `dir`; fails when there are none.
    pub fn open(dir: &Path) -> Result<Self, SourceError> {
        let files = super::files_in(dir, &["png", "jpg", "jpeg"], "PNG or JPEG frames")?;
        Ok(Self {
            name: super::clip_name_of(dir),
            files,
            next: 0,
        })
    }
}

impl FrameSource for DirSource {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let index = self.next as u64;
        self.next += 1;
        let bad_frame = |reason: String| SourceError::BadFrame {
            path: path.clone(),
            index,
            reason,
        };
        let reader = image::ImageReader::open(path).map_err(|e| bad_frame(e.to_string()))?;
        let gray = super::pixels::decode_gray_image(reader, "image", None)
            .map_err(|e| bad_frame(e.to_string()))?;
        let (width, height) = (gray.width() as usize, gray.height() as usize);
        GrayFrame::new(width, height, gray.into_raw(), index)
            .map(Some)
            .ok_or_else(|| bad_frame("empty image".into()))
    }

    fn clip_name(&self) -> &str {
        &self.name
    }

    fn frame_rate(&self) -> Option<f64> {
        Some(DIR_FRAME_RATE)
    }
}
