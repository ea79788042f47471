//! Clips on disk, decoded by an `ffmpeg` child process into raw gray frames.
//!
//! ffmpeg reads every container and codec a clinician is likely to export
//! (mp4, avi, mov, mpeg, gif, still images), so Pleura does not link a codec.
//!
//! A clip whose video declares a side over [`crate::frame::MAX_SIDE`] is
//! refused when it is opened, before a frame is decoded; ffmpeg is also
//! told not to decode a picture of more pixels than that limit, should a
//! stream grow midway (such a frame is lost, the clip goes on).

use super::{FrameSource, SourceError};
use crate::frame::{GrayFrame, MAX_SIDE, check_declared_size};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Geometry and timing of a clip, read with `ffprobe`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipInfo {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Frames per second (25 where the container does not say).
    pub fps: f64,
}

/// A clip decoded frame by frame through ffmpeg.
pub struct FileSource {
    path: PathBuf,
    name: String,
    info: ClipInfo,
    child: Child,
    stdout: ChildStdout,
    next_seq: u64,
}

impl FileSource {
    /// Probes `path` and starts decoding it; a clip whose video declares a
    /// side over [`MAX_SIDE`] is refused, naming its size.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        super::check_kind(path, super::Kind::File, "a clip file")?;
        let info = probe(path)?;
        let mut child = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin"])
            .args(["-max_pixels", &(MAX_SIDE * MAX_SIDE).to_string(), "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SourceError::Spawn {
                program: "ffmpeg",
                path: path.to_path_buf(),
                cause: source,
            })?;
        let stdout = child.stdout.take().ok_or_else(|| SourceError::Decode {
            path: path.to_path_buf(),
            reason: "ffmpeg gave no output pipe".into(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            name: super::clip_name_of(path),
            info,
            child,
            stdout,
            next_seq: 0,
        })
    }

    /// The clip's geometry and frame rate.
    pub fn info(&self) -> ClipInfo {
        self.info
    }

    fn finish(&mut self) -> Result<(), SourceError> {
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        let status = self.child.wait().map_err(|source| SourceError::Io {
            path: self.path.clone(),
            cause: source,
        })?;
        if status.success() || self.next_seq > 0 {
            return Ok(());
        }
        Err(SourceError::Decode {
            path: self.path.clone(),
            reason: first_line(&stderr, "ffmpeg failed"),
        })
    }
}

impl FrameSource for FileSource {
    fn clip_name(&self) -> &str {
        &self.name
    }

    fn frame_rate(&self) -> Option<f64> {
        Some(self.info.fps)
    }

    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        let size = self.info.width * self.info.height;
        let mut pixels = vec![0u8; size];
        let mut filled = 0;
        while filled < size {
            match self.stdout.read(&mut pixels[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Io {
                        path: self.path.clone(),
                        cause: source,
                    });
                }
            }
        }
        if filled < size {
            // A partial trailing frame is a truncated clip: keep what decoded.
            self.finish()?;
            if self.next_seq == 0 {
                return Err(SourceError::Decode {
                    path: self.path.clone(),
                    reason: "no frame could be decoded".into(),
                });
            }
            return Ok(None);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(GrayFrame::new(
            self.info.width,
            self.info.height,
            pixels,
            seq,
        ))
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes a whole clip (a DICOM file through dicom-rs, anything else
/// through ffmpeg), keeping at most `max_frames` frames spread evenly over
/// it (all of them when `max_frames` is `None`).
pub fn decode_clip(path: &Path, max_frames: Option<usize>) -> Result<Vec<GrayFrame>, SourceError> {
    let mut source: Box<dyn FrameSource> = if super::is_dicom(path) {
        Box::new(super::DicomSource::open(path)?)
    } else {
        Box::new(FileSource::open(path)?)
    };
    let mut frames = Vec::new();
    while let Some(frame) = source.next_frame()? {
        frames.push(frame);
    }
    let keep = evenly_spaced(frames.len(), max_frames);
    Ok(frames
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.binary_search(i).is_ok())
        .map(|(_, frame)| frame)
        .collect())
}

/// The indices, in order, of at most `max` of `n` items spread evenly over
/// them, first and last included (all of them when `max` is `None`, 0 or at
/// least `n`): the frames [`decode_clip`] keeps.
pub fn evenly_spaced(n: usize, max: Option<usize>) -> Vec<usize> {
    match max {
        Some(count) if n > count && count > 0 => (0..count)
            .map(|i| {
                if count == 1 {
                    0
                } else {
                    i * (n - 1) / (count - 1)
                }
            })
            .collect(),
        _ => (0..n).collect(),
    }
}

fn probe(path: &Path) -> Result<ClipInfo, SourceError> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=width,height,avg_frame_rate,r_frame_rate",
        ])
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SourceError::Spawn {
            program: "ffprobe",
            path: path.to_path_buf(),
            cause: source,
        })?;
    let decode_error = |reason: String| SourceError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(decode_error(first_line(&stderr, "ffprobe failed")));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| decode_error(format!("unreadable ffprobe output: {e}")))?;
    let stream = &json["streams"][0];
    let dim = |key: &str| stream[key].as_u64().filter(|&v| v > 0).map(|v| v as usize);
    let (Some(width), Some(height)) = (dim("width"), dim("height")) else {
        return Err(decode_error("no video stream".into()));
    };
    check_declared_size(width as u64, height as u64)
        .map_err(|size| decode_error(format!("its video {size}")))?;
    let fps = [
        stream["avg_frame_rate"].as_str(),
        stream["r_frame_rate"].as_str(),
    ]
    .into_iter()
    .flatten()
    .filter_map(parse_rate)
    .find(|r| (1.0..=240.0).contains(r))
    .unwrap_or(25.0);
    Ok(ClipInfo { width, height, fps })
}

fn parse_rate(rate: &str) -> Option<f64> {
    let (num, den) = rate.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (den > 0.0).then(|| num / den)
}

fn first_line(text: &str, fallback: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(fallback)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evenly_spaced_keeps_first_and_last() {
        assert_eq!(evenly_spaced(10, Some(4)), vec![0, 3, 6, 9]);
        assert_eq!(evenly_spaced(3, Some(4)), vec![0, 1, 2]);
        assert_eq!(evenly_spaced(3, None), vec![0, 1, 2]);
    }

    #[test]
    fn frame_rates_parse_as_fractions() {
        assert_eq!(parse_rate("25/1"), Some(25.0));
        assert_eq!(
            parse_rate("30000/1001").map(|r| (r * 100.0).round()),
            Some(2997.0)
        );
        assert_eq!(parse_rate("0/0"), None);
    }
}
