//! A V4L2 capture device (a USB video grabber), read with the `v4l` crate.
//!
//! This is the basic path: it asks for GREY, then YUYV, at the device's
//! current size, checks the format the driver really chose, and streams
//! through mmap buffers with a timeout. A timeout or an unplug ends the
//! stream with an error that names the device. It must never panic: the
//! crate's `Stream::drop` panics on a failed STREAMOFF, so the stream is
//! stopped by hand first and leaked rather than dropped if that fails.

use super::{FrameSource, SourceError};
use crate::frame::GrayFrame;
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::Capture;
use v4l::{Device, FourCC};

/// How long to wait for a frame before reporting no signal.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Capture buffers queued in the driver.
const BUFFERS: u32 = 4;
/// `ENODEV`: the device went away (unplugged).
const ENODEV: i32 = 19;

/// Pixel layouts this path reads, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 8-bit luma.
    Grey,
    /// Packed Y0 U Y1 V, 2 bytes per pixel.
    Yuyv,
}

impl Layout {
    const PREFERENCE: [Layout; 2] = [Layout::Grey, Layout::Yuyv];

    fn fourcc(self) -> FourCC {
        match self {
            Layout::Grey => FourCC::new(b"GREY"),
            Layout::Yuyv => FourCC::new(b"YUYV"),
        }
    }

    fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Grey => 1,
            Layout::Yuyv => 2,
        }
    }
}

/// Frames from a V4L2 capture device.
pub struct V4lSource {
    path: PathBuf,
    name: String,
    layout: Layout,
    width: usize,
    height: usize,
    stride: usize,
    stream: Option<Stream<'static>>,
    seq: u64,
}

impl V4lSource {
    /// Opens the device, negotiates a gray-convertible format and starts
    /// streaming.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let io_error = |cause: std::io::Error| SourceError::Io {
            path: path.to_path_buf(),
            cause,
        };
        let device_error = |reason: String| SourceError::Device {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            return Err(SourceError::Missing {
                path: path.to_path_buf(),
            });
        }
        let device = Device::with_path(path).map_err(io_error)?;
        let caps = device.query_caps().map_err(io_error)?;
        if !caps
            .capabilities
            .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        {
            return Err(device_error(format!(
                "'{}' is not a video capture device",
                caps.card
            )));
        }
        let current = device.format().map_err(io_error)?;
        let mut chosen = None;
        for layout in Layout::PREFERENCE {
            let mut wanted = current;
            wanted.fourcc = layout.fourcc();
            wanted.stride = 0;
            let got = device.set_format(&wanted).map_err(io_error)?;
            // Drivers may silently answer with another format: trust only
            // what came back.
            if got.fourcc == layout.fourcc() {
                chosen = Some((layout, got));
                break;
            }
        }
        let Some((layout, format)) = chosen else {
            return Err(device_error(format!(
                "offers neither GREY nor YUYV (current format {})",
                current.fourcc
            )));
        };
        let (width, height) = (format.width as usize, format.height as usize);
        let stride = (format.stride as usize).max(width * layout.bytes_per_pixel());
        let mut stream =
            Stream::with_buffers(&device, Type::VideoCapture, BUFFERS).map_err(io_error)?;
        stream.set_timeout(FRAME_TIMEOUT);
        log::info!(
            "{}: {}×{} {} (stride {stride})",
            path.display(),
            width,
            height,
            format.fourcc
        );
        Ok(Self {
            path: path.to_path_buf(),
            name: super::clip_name_of(path),
            layout,
            width,
            height,
            stride,
            stream: Some(stream),
            seq: 0,
        })
    }
}

impl FrameSource for V4lSource {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let seq = self.seq;
        self.seq += 1;
        let (buffer, meta) = stream.next().map_err(|cause| match cause.raw_os_error() {
            Some(ENODEV) => SourceError::Device {
                path: self.path.clone(),
                reason: "the grabber was unplugged".into(),
            },
            _ if cause.kind() == std::io::ErrorKind::TimedOut => SourceError::Device {
                path: self.path.clone(),
                reason: format!("no signal: no frame for {} s", FRAME_TIMEOUT.as_secs()),
            },
            _ => SourceError::Io {
                path: self.path.clone(),
                cause,
            },
        })?;
        let used = (meta.bytesused as usize).min(buffer.len());
        let pixels = to_gray(
            &buffer[..used],
            self.layout,
            self.width,
            self.height,
            self.stride,
        )
        .ok_or_else(|| SourceError::BadFrame {
            path: self.path.clone(),
            index: seq,
            reason: format!(
                "{used} bytes, {} expected",
                self.stride * (self.height - 1) + self.width * self.layout.bytes_per_pixel()
            ),
        })?;
        Ok(GrayFrame::new(self.width, self.height, pixels, seq))
    }

    fn clip_name(&self) -> &str {
        &self.name
    }
}

impl Drop for V4lSource {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            match stream.stop() {
                Ok(()) => drop(stream),
                Err(e) if e.raw_os_error() == Some(ENODEV) => drop(stream),
                Err(e) => {
                    log::warn!("{}: cannot stop streaming: {e}", self.path.display());
                    // Dropping would panic inside the crate; leak the buffers.
                    std::mem::forget(stream);
                }
            }
        }
    }
}

/// The luma plane of one captured buffer, rows addressed by `stride`;
/// `None` when the buffer is too short for the frame.
fn to_gray(
    buffer: &[u8],
    layout: Layout,
    width: usize,
    height: usize,
    stride: usize,
) -> Option<Vec<u8>> {
    let row_bytes = width * layout.bytes_per_pixel();
    if width == 0 || height == 0 || buffer.len() < stride * (height - 1) + row_bytes {
        return None;
    }
    let mut gray = Vec::with_capacity(width * height);
    for row in 0..height {
        let line = &buffer[row * stride..][..row_bytes];
        match layout {
            Layout::Grey => gray.extend_from_slice(line),
            Layout::Yuyv => gray.extend(line.iter().step_by(2)),
        }
    }
    Some(gray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_keeps_the_luma_bytes_of_each_strided_row() {
        // 2×2 YUYV with 2 bytes of row padding: Y0 U Y1 V pad pad.
        let buffer = [10, 128, 20, 128, 0, 0, 30, 128, 40, 128];
        let gray = to_gray(&buffer, Layout::Yuyv, 2, 2, 6).unwrap();
        assert_eq!(gray, vec![10, 20, 30, 40]);
    }

    #[test]
    fn grey_rows_skip_the_padding() {
        let buffer = [1, 2, 3, 99, 4, 5, 6];
        let gray = to_gray(&buffer, Layout::Grey, 3, 2, 4).unwrap();
        assert_eq!(gray, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_short_buffer_is_refused() {
        assert_eq!(to_gray(&[1, 2, 3], Layout::Grey, 3, 2, 3), None);
    }

    #[test]
    fn a_missing_device_is_named() {
        let Err(err) = V4lSource::open(Path::new("/dev/video-pleura-none")) else {
            panic!("a missing device opened");
        };
        assert!(err.to_string().contains("/dev/video-pleura-none"), "{err}");
    }
}
