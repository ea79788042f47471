//! The frames each recorded zone was scored on, kept beside the journal so
//! that an exam can be sent later from its journal alone, after a restart
//! too.
//!
//! While a zone is scanned, the session keeps its newest frames (at most
//! [`MAX_CLIP_FRAMES`] and [`MAX_CLIP_BYTES`]). When the zone is recorded
//! they are written, fsynced and renamed into place as
//! `STEM-clips/UID_ROOT/zone-N.clip` beside the journal `STEM.jsonl`: one
//! folder per exam, one file per zone, replaced when the zone is recorded
//! again. A clip file is a one-line text header,
//! `PLEURA-CLIP 1 WIDTH HEIGHT FRAMES FRAME_TIME_US`, then the frames' gray
//! pixels, row-major, frame after frame.

use crate::atomic_write::{Durability, write_atomically};
use crate::frame::GrayFrame;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most frames a zone's clip keeps: 3 s at 25 fps.
pub const MAX_CLIP_FRAMES: usize = 75;
/// The most pixel bytes a zone's clip keeps (fewer frames of a large
/// picture): 24 MiB, so that a 14-zone exam stays under 340 MiB.
pub const MAX_CLIP_BYTES: usize = 24 * 1024 * 1024;
/// The largest side of a clip frame read back.
const MAX_SIDE: usize = 8192;
/// What a clip file starts with.
const MAGIC: &str = "PLEURA-CLIP 1";

/// A zone's saved frames.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneClip {
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// The time between frames.
    pub frame_time: Duration,
    /// The frames' gray pixels, frame after frame.
    pub pixels: Vec<u8>,
}

impl ZoneClip {
    /// How many frames it holds.
    pub fn frames(&self) -> usize {
        self.pixels.len() / (self.width * self.height).max(1)
    }
}

/// Why a zone clip could not be saved or read.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// Reading or writing failed.
    #[error("zone clip {path}: {cause}")]
    Io {
        /// The clip file.
        path: PathBuf,
        /// What failed.
        cause: std::io::Error,
    },
    /// The file is not a clip Pleura wrote, or was damaged.
    #[error("zone clip {path}: {reason}")]
    Damaged {
        /// The clip file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The zone clips of the exams in one journal.
#[derive(Debug, Clone)]
pub struct ZoneClips {
    dir: PathBuf,
}

impl ZoneClips {
    /// The clips of the journal at `journal`: the folder `STEM-clips`
    /// beside it.
    pub fn beside(journal: &Path) -> Self {
        let stem = journal.file_stem().unwrap_or_default().to_string_lossy();
        Self {
            dir: journal.with_file_name(format!("{stem}-clips")),
        }
    }

    /// The file of `zone` (index into the protocol's zones) of the exam
    /// whose UID root is `uid_root`.
    pub fn path(&self, uid_root: &str, zone: usize) -> PathBuf {
        self.dir.join(uid_root).join(format!("zone-{zone}.clip"))
    }

    /// Saves `clip` as `zone`'s, durably: once this returns, the clip
    /// survives a power cut.
    pub fn save(&self, uid_root: &str, zone: usize, clip: &ZoneClip) -> Result<(), ClipError> {
        let frames = [clip.pixels.as_slice()];
        let header = (clip.width, clip.height, clip.frames(), clip.frame_time);
        self.write(uid_root, zone, header, &frames)
    }

    /// Saves the frames of `buffer` as `zone`'s clip, as [`Self::save`],
    /// straight from the buffer's frames (no copy of the whole clip in
    /// memory); nothing when the buffer is empty.
    pub(crate) fn save_buffer(
        &self,
        uid_root: &str,
        zone: usize,
        buffer: &ClipBuffer,
    ) -> Result<(), ClipError> {
        let Some(first) = buffer.frames.front() else {
            return Ok(());
        };
        let frames: Vec<&[u8]> = buffer.frames.iter().map(|f| f.pixels.as_slice()).collect();
        let header = (first.width, first.height, frames.len(), buffer.frame_time());
        self.write(uid_root, zone, header, &frames)
    }

    /// Writes a clip file from its header (width, height, frames, frame
    /// time) and its pixels, in pieces.
    fn write(
        &self,
        uid_root: &str,
        zone: usize,
        (width, height, frames, frame_time): (usize, usize, usize, Duration),
        pixels: &[&[u8]],
    ) -> Result<(), ClipError> {
        let path = self.path(uid_root, zone);
        let io = |cause| ClipError::Io {
            path: path.clone(),
            cause,
        };
        let folder = path.parent().unwrap_or(Path::new("."));
        let new_folder = !folder.exists();
        std::fs::create_dir_all(folder).map_err(io)?;
        write_atomically(&path, Durability::Synced, |out| {
            writeln!(
                out,
                "{MAGIC} {width} {height} {frames} {}",
                frame_time.as_micros()
            )?;
            pixels.iter().try_for_each(|piece| out.write_all(piece))
        })
        .map_err(io)?;
        // The rename, and a new folder, survive a power cut too.
        let mut synced = vec![folder];
        if new_folder {
            synced.extend(folder.parent());
            synced.extend(folder.parent().and_then(Path::parent));
        }
        for dir in synced {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }

    /// Reads `zone`'s clip, or `None` when it was never saved.
    pub fn load(&self, uid_root: &str, zone: usize) -> Result<Option<ZoneClip>, ClipError> {
        let path = self.path(uid_root, zone);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => return Err(ClipError::Io { path, cause }),
        };
        read_clip(&path, file).map(Some)
    }
}

/// Reads a clip file, trusting no number in its header: the pixels must be
/// exactly the frames it announces, and no more than a clip holds.
fn read_clip(path: &Path, file: std::fs::File) -> Result<ZoneClip, ClipError> {
    let damaged = |reason: String| ClipError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let io = |cause| ClipError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let size = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::new(file);
    let mut header = Vec::new();
    (&mut reader)
        .take(64)
        .read_until(b'\n', &mut header)
        .map_err(io)?;
    let header = std::str::from_utf8(&header)
        .ok()
        .and_then(|h| h.strip_suffix('\n'))
        .and_then(|h| h.strip_prefix(MAGIC))
        .ok_or_else(|| damaged(format!("does not start with '{MAGIC}'")))?;
    let numbers: Vec<usize> = header
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| damaged("a header number is not a number".into()))?;
    let &[width, height, frames, frame_time_us] = numbers.as_slice() else {
        return Err(damaged("the header does not hold 4 numbers".into()));
    };
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(damaged(format!("frame size {width}x{height}")));
    }
    if !(1..=MAX_CLIP_FRAMES).contains(&frames) || frames * width * height > MAX_CLIP_BYTES {
        return Err(damaged(format!("{frames} frames of {width}x{height}")));
    }
    let expected = frames * width * height;
    let header_len = MAGIC.len() + header.len() + 1;
    if size != (header_len + expected) as u64 {
        return Err(damaged(format!(
            "{} bytes of pixels where {frames} frames of {width}x{height} are {expected}",
            size.saturating_sub(header_len as u64)
        )));
    }
    let mut pixels = vec![0; expected];
    reader.read_exact(&mut pixels).map_err(io)?;
    Ok(ZoneClip {
        width,
        height,
        frame_time: Duration::from_micros(frame_time_us as u64),
        pixels,
    })
}

/// The newest frames of the zone being scanned.
#[derive(Debug, Default)]
pub(crate) struct ClipBuffer {
    frames: VecDeque<GrayFrame>,
}

impl ClipBuffer {
    /// Keeps `frame`, dropping the oldest beyond the clip's limits (and
    /// every earlier frame when the picture size changed).
    pub(crate) fn push(&mut self, frame: &GrayFrame) {
        if self
            .frames
            .back()
            .is_some_and(|last| (last.width, last.height) != (frame.width, frame.height))
        {
            self.frames.clear();
        }
        let limit = (MAX_CLIP_BYTES / frame.pixels.len().max(1)).clamp(1, MAX_CLIP_FRAMES);
        while self.frames.len() >= limit {
            self.frames.pop_front();
        }
        self.frames.push_back(frame.clone());
    }

    /// Forgets every frame (a new zone).
    pub(crate) fn clear(&mut self) {
        self.frames.clear();
    }

    /// The mean time between the frames' captures (40 ms, 25 fps, for a
    /// single frame), in whole microseconds, as a saved clip holds it.
    fn frame_time(&self) -> Duration {
        let gaps = self.frames.len().saturating_sub(1) as u32;
        let span = match (self.frames.front(), self.frames.back()) {
            (Some(first), Some(last)) => last.captured.checked_duration_since(first.captured),
            _ => None,
        };
        let mean = match span {
            Some(span) if gaps > 0 => (span / gaps).max(Duration::from_millis(1)),
            _ => Duration::from_millis(40),
        };
        Duration::from_micros(u64::try_from(mean.as_micros()).unwrap_or(u64::MAX))
    }

    /// The frames kept, as a clip, or `None` before the first frame.
    #[cfg(test)]
    pub(crate) fn clip(&self) -> Option<ZoneClip> {
        let first = self.frames.front()?;
        Some(ZoneClip {
            width: first.width,
            height: first.height,
            frame_time: self.frame_time(),
            pixels: self
                .frames
                .iter()
                .flat_map(|f| f.pixels.iter().copied())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn frame(width: usize, height: usize, value: u8, seq: u64) -> GrayFrame {
        GrayFrame {
            width,
            height,
            pixels: vec![value; width * height],
            seq,
            captured: Instant::now(),
        }
    }

    #[test]
    fn a_slow_clip_keeps_its_frame_time_in_whole_microseconds_when_saved() {
        // Frames 1.3547 ms apart (slow capture, as under an emulator): the
        // frame time is kept in whole microseconds, as the file holds it.
        let dir = tempfile::tempdir().unwrap();
        let clips = ZoneClips::beside(&dir.path().join("exam.jsonl"));
        let mut buffer = ClipBuffer::default();
        let start = Instant::now();
        for seq in 0..5u32 {
            let mut f = frame(8, 6, seq as u8, u64::from(seq));
            f.captured = start + Duration::from_nanos(1_354_704) * seq;
            buffer.push(&f);
        }
        let clip = buffer.clip().unwrap();
        assert_eq!(clip.frame_time, Duration::from_micros(1354));
        clips.save("2.25.7", 2, &clip).unwrap();
        assert_eq!(clips.load("2.25.7", 2).unwrap(), Some(clip));
    }

    #[test]
    fn a_saved_clip_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ZoneClips::beside(&dir.path().join("exam.jsonl"));
        let mut buffer = ClipBuffer::default();
        for seq in 0..5 {
            buffer.push(&frame(8, 6, seq as u8, seq));
        }
        let clip = buffer.clip().unwrap();
        assert_eq!(clip.frames(), 5);
        clips.save("2.25.7", 3, &clip).unwrap();
        assert!(
            clips
                .path("2.25.7", 3)
                .starts_with(dir.path().join("exam-clips"))
        );
        assert_eq!(clips.load("2.25.7", 3).unwrap(), Some(clip));
        assert_eq!(clips.load("2.25.7", 4).unwrap(), None);
    }

    #[test]
    fn the_buffer_keeps_the_newest_frames_within_the_limits() {
        let mut buffer = ClipBuffer::default();
        for seq in 0..200 {
            buffer.push(&frame(4, 4, seq as u8, seq));
        }
        let clip = buffer.clip().unwrap();
        assert_eq!(clip.frames(), MAX_CLIP_FRAMES);
        assert_eq!(clip.pixels.last(), Some(&199));
        // A large picture: fewer frames, within the byte limit.
        let (w, h) = (1920, 1080);
        for seq in 0..20 {
            buffer.push(&frame(w, h, 1, seq));
        }
        let clip = buffer.clip().unwrap();
        assert_eq!(clip.frames(), MAX_CLIP_BYTES / (w * h));
        assert_eq!((clip.width, clip.height), (w, h), "older sizes dropped");
    }

    #[test]
    fn a_damaged_or_foreign_clip_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let clips = ZoneClips::beside(&dir.path().join("exam.jsonl"));
        let path = clips.path("2.25.1", 0);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for (bytes, says) in [
            (b"GIF89a".to_vec(), "does not start"),
            (
                b"PLEURA-CLIP 1 4 4 2 40000\n0123".to_vec(),
                "4 bytes of pixels",
            ),
            (b"PLEURA-CLIP 1 99999 4 1 40000\n".to_vec(), "frame size"),
            (b"PLEURA-CLIP 1 4 4 1000 40000\n".to_vec(), "1000 frames"),
            (b"PLEURA-CLIP 1 4 x 1 1\n".to_vec(), "not a number"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let message = clips.load("2.25.1", 0).unwrap_err().to_string();
            assert!(
                message.contains("zone-0.clip") && message.contains(says),
                "{message}"
            );
        }
    }
}
