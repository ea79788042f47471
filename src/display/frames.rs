//! The headless display: annotated frames written as PNG files, every Nth
//! frame, and a contact sheet of the run at the end.
//!
//! Files appear whole or not at all (written beside, then renamed). Memory
//! stays bounded: the contact sheet keeps at most [`SHEET_FRAMES`]
//! thumbnails, thinning them out as the run grows.

use super::annotate::annotate;
use super::{DisplayError, Renderer};
use crate::atomic_write::{Durability, write_atomically};
use crate::exam::Session;
use crate::scoring::ScoredFrame;
use image::RgbImage;
use image::imageops::{FilterType, resize};
use std::path::{Path, PathBuf};

/// Most thumbnails on the contact sheet.
pub(super) const SHEET_FRAMES: usize = 24;
/// Thumbnails per row of the contact sheet.
const SHEET_COLUMNS: u32 = 6;
/// Width of one thumbnail.
const THUMB_WIDTH: u32 = 240;

/// Writes annotated frames into a folder.
pub struct AnnotatedFrames {
    dir: PathBuf,
    classes: Vec<String>,
    every: u64,
    offered: u64,
    drawn: u64,
    thumbs: Vec<RgbImage>,
    /// Every how many drawn frames a thumbnail is kept.
    thumb_stride: u64,
}

impl AnnotatedFrames {
    /// Creates `dir` if needed; draws one frame in `every` (at least 1).
    pub fn create(dir: &Path, classes: &[String], every: u64) -> Result<Self, DisplayError> {
        super::create_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            classes: classes.to_vec(),
            every: every.max(1),
            offered: 0,
            drawn: 0,
            thumbs: Vec::new(),
            thumb_stride: 1,
        })
    }

    fn keep_thumbnail(&mut self, picture: &RgbImage) {
        if !self.drawn.is_multiple_of(self.thumb_stride) {
            return;
        }
        if self.thumbs.len() == SHEET_FRAMES {
            // Keep every other thumbnail, and from now on every other frame.
            let mut index = 0;
            self.thumbs.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.thumb_stride *= 2;
            if !self.drawn.is_multiple_of(self.thumb_stride) {
                return;
            }
        }
        let height = picture.height() * THUMB_WIDTH / picture.width().max(1);
        self.thumbs.push(resize(
            picture,
            THUMB_WIDTH,
            height.max(1),
            FilterType::Triangle,
        ));
    }
}

impl Renderer for AnnotatedFrames {
    fn show(&mut self, frame: &ScoredFrame, _session: &Session) -> Result<bool, DisplayError> {
        self.offered += 1;
        if !(self.offered - 1).is_multiple_of(self.every) {
            return Ok(false);
        }
        let picture = annotate(frame, &self.classes).0;
        let name = format!("{}-{:05}.png", file_stem(&frame.clip), frame.frame.seq);
        save_png(&picture, &self.dir.join(name))?;
        self.keep_thumbnail(&picture);
        self.drawn += 1;
        Ok(true)
    }

    fn finish(&mut self, _session: &Session) -> Result<(), DisplayError> {
        let Some(first) = self.thumbs.first() else {
            return Ok(());
        };
        let cell_h = self
            .thumbs
            .iter()
            .map(RgbImage::height)
            .max()
            .unwrap_or(first.height());
        let columns = SHEET_COLUMNS.min(self.thumbs.len() as u32);
        let rows = (self.thumbs.len() as u32).div_ceil(columns);
        let mut sheet = RgbImage::new(columns * THUMB_WIDTH, rows * cell_h);
        for (i, thumb) in self.thumbs.iter().enumerate() {
            let (col, row) = (i as u32 % columns, i as u32 / columns);
            image::imageops::replace(
                &mut sheet,
                thumb,
                i64::from(col * THUMB_WIDTH),
                i64::from(row * cell_h),
            );
        }
        save_png(&sheet, &self.dir.join("contact-sheet.png"))
    }
}

/// A clip name made safe for a file name.
fn file_stem(clip: &str) -> String {
    let stem = Path::new(clip)
        .file_stem()
        .map_or_else(|| clip.into(), |s| s.to_string_lossy());
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes a PNG beside its final name, then renames it into place.
fn save_png(picture: &RgbImage, path: &Path) -> Result<(), DisplayError> {
    write_atomically(path, Durability::Unsynced, |out| {
        picture
            .write_to(out, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    })
    .map_err(|cause| DisplayError::Write {
        path: path.to_path_buf(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_names_become_safe_file_stems() {
        assert_eq!(file_stem("covid score2.mp4"), "covid_score2");
        assert_eq!(file_stem("a b.c.mp4"), "a_b_c");
        assert_eq!(file_stem("../x/y.avi"), "y");
        assert_eq!(file_stem("video0"), "video0");
    }
}
