//! Frame sources: where frames come from.
//!
//! Every source yields [`GrayFrame`]s through the [`FrameSource`] trait, so
//! that the rest of the program never knows whether frames come from a clip
//! on disk or a capture device.

mod file;

pub use file::{ClipInfo, FileSource, decode_clip};

use crate::frame::GrayFrame;
use std::path::PathBuf;

/// Why a source could not deliver frames.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The clip or device does not exist.
    #[error("{path}: no such file")]
    Missing {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// A helper program (ffmpeg, ffprobe) could not be started.
    #[error("cannot run {program} for {path}: {cause} (is ffmpeg installed?)")]
    Spawn {
        /// The program that failed to start.
        program: &'static str,
        /// The clip it was started for.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// The clip could not be decoded.
    #[error("{path}: cannot decode: {reason}")]
    Decode {
        /// The clip.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// Reading from the decoder failed midway.
    #[error("{path}: read error: {cause}")]
    Io {
        /// The clip.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
}

/// Anything that yields grayscale frames in order.
pub trait FrameSource {
    /// The next frame, or `Ok(None)` at the end of the stream.
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError>;
}
