//! Clips played one after another, each its own clip: `file:PATH` is a
//! playlist of one, `demo` the bundled demo clips.

use super::{FileSource, FrameSource, SourceError};
use crate::frame::GrayFrame;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Extensions of the clips that `demo` plays.
const DEMO_EXTENSIONS: [&str; 4] = ["mp4", "mov", "avi", "mpeg"];

/// Clips decoded in turn; the source ends after the last one.
pub struct Playlist {
    pending: VecDeque<PathBuf>,
    current: FileSource,
}

impl Playlist {
    /// Plays `clips` in order. The first clip is opened now, so that a
    /// missing or undecodable file is reported before anything runs.
    pub fn new(clips: Vec<PathBuf>) -> Result<Self, SourceError> {
        let mut pending = VecDeque::from(clips);
        let first = pending.pop_front().ok_or_else(|| SourceError::Decode {
            path: PathBuf::new(),
            reason: "the playlist is empty".into(),
        })?;
        Ok(Self {
            current: FileSource::open(&first)?,
            pending,
        })
    }

    /// Every clip in `dir`, in name order.
    pub fn demo(dir: &Path) -> Result<Self, SourceError> {
        let clips = super::files_in(dir, &DEMO_EXTENSIONS, "demo clips")?;
        Self::new(clips)
    }
}

impl FrameSource for Playlist {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        loop {
            if let Some(frame) = self.current.next_frame()? {
                return Ok(Some(frame));
            }
            match self.pending.pop_front() {
                Some(next) => self.current = FileSource::open(&next)?,
                None => return Ok(None),
            }
        }
    }

    fn clip_name(&self) -> &str {
        self.current.clip_name()
    }

    fn frame_rate(&self) -> Option<f64> {
        self.current.frame_rate()
    }
}
