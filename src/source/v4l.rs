//! A V4L2 capture device (a USB video grabber), read with the `v4l` crate.
//!
//! * **Negotiation.** The formats are tried in the order asked for (by
//!   default [`PixelFormat::PREFERENCE`]: GREY, YUYV, MJPG, NV12, RGB3) at
//!   the size asked for (or the device's current one). Drivers may answer
//!   with another format or size: only what comes back is trusted, and rows
//!   are addressed by the stride it reports.
//! * **Streaming.** mmap buffers with a timeout; every frame is turned into
//!   gray by [`pixels::to_gray`]. A frame that cannot be (wrong size, bad
//!   JPEG) is dropped and counted ([`SourceError::BadFrame`]).
//! * **Signal loss.** A timeout, an unplug (ENODEV) or another stream error
//!   closes the device and returns [`SourceError::NoSignal`]: the run goes
//!   on, the screen says NO SIGNAL, and later calls reopen the grabber with
//!   a growing back-off. It comes back under the same path, or under
//!   another `/dev/videoN` with the same card name and bus.
//! * **No panics.** The crate's `Stream::drop` panics on a failed
//!   STREAMOFF; the stream is stopped by hand and leaked if that fails.
//!   Controls are never enumerated (the crate unwraps unknown types).

use super::pixels::{self, FrameLayout, PixelFormat};
use super::{FrameSource, SourceError};
use crate::frame::GrayFrame;
use crate::spec::{self, SpecError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
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
/// `ENOTTY`: the file does not understand V4L2 requests.
const ENOTTY: i32 = 25;

/// What to ask a capture device for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4lOptions {
    /// Formats in order of preference.
    pub formats: Vec<PixelFormat>,
    /// Frame size; the device's current one when `None`.
    pub size: Option<(u32, u32)>,
    /// Frames per second; the device's current rate when `None`.
    pub fps: Option<u32>,
}

impl Default for V4lOptions {
    fn default() -> Self {
        Self {
            formats: PixelFormat::PREFERENCE.to_vec(),
            size: None,
            fps: None,
        }
    }
}

impl V4lOptions {
    /// The frame rates a grabber may be asked for: a real one gives 5 to
    /// 60 frames a second; 0 is no rate, and more than 240 no grabber gives.
    pub const FRAME_RATES: std::ops::RangeInclusive<u64> = 1..=240;

    /// Checks a frame rate against [`Self::FRAME_RATES`]; the error says
    /// the rule.
    pub fn check_fps(fps: u64) -> Result<u32, SpecError> {
        match Self::FRAME_RATES.contains(&fps) {
            true => Ok(fps as u32),
            false => Err(SpecError::BadValue {
                what: "v4l",
                key: "fps".into(),
                value: fps.to_string(),
                rule: Self::fps_rule(),
            }),
        }
    }

    fn fps_rule() -> String {
        let (low, high) = Self::FRAME_RATES.into_inner();
        format!("use {low} to {high} frames a second")
    }

    /// Parses `format=MJPG+YUYV,size=640x480,fps=30` (each part optional).
    pub fn parse(options: &str) -> Result<Self, SpecError> {
        let mut parsed = Self::default();
        for option in spec::options("v4l", options, &["format", "size", "fps"]) {
            let option = option?;
            let value = option.value;
            match option.key {
                "format" => {
                    parsed.formats = value.split('+').map(str::parse).collect::<Result<_, _>>()?;
                }
                "size" => {
                    let (w, h) = option.size()?;
                    parsed.size = Some((w as u32, h as u32));
                }
                _ => {
                    let fps = option.parse(&Self::fps_rule())?;
                    parsed.fps = Some(Self::check_fps(fps)?);
                }
            }
        }
        Ok(parsed)
    }
}

/// How a grabber is recognised when it comes back under another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The card name the driver reports.
    pub card: String,
    /// The bus it sits on (e.g. `usb-0000:01:00.0-1.2`).
    pub bus: String,
}

/// Where a lost grabber is now: its old path if a device with the same
/// identity is there, else the first node that has the same identity.
pub(super) fn find_again(
    old: &Path,
    identity: &DeviceIdentity,
    nodes: &[(PathBuf, DeviceIdentity)],
) -> Option<PathBuf> {
    nodes
        .iter()
        .find(|(path, id)| path == old && id == identity)
        .or_else(|| nodes.iter().find(|(_, id)| id == identity))
        .map(|(path, _)| path.clone())
}

/// Delays between attempts to reopen a lost grabber: 0.25 s, doubling, at
/// most 1 s, until it is back: a grabber plugged back in delivers frames
/// within about a second, however long it was out. An attempt costs a
/// scan of the device nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const LONGEST: Duration = Duration::from_secs(1);

    /// Starts again from the shortest delay.
    pub(super) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay before the next attempt (each call doubles the next).
    pub(super) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::LONGEST);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// An open, streaming device.
struct Open {
    path: PathBuf,
    layout: FrameLayout,
    stream: Stream<'static>,
}

impl Open {
    /// Stops streaming without letting the crate panic.
    fn close(mut self) {
        match self.stream.stop() {
            Ok(()) => drop(self.stream),
            Err(e) if e.raw_os_error() == Some(ENODEV) => drop(self.stream),
            Err(e) => {
                log::warn!("{}: cannot stop streaming: {e}", self.path.display());
                // Dropping would panic inside the crate; leak the buffers.
                std::mem::forget(self.stream);
            }
        }
    }
}

/// Frames from a V4L2 capture device.
pub struct V4lSource {
    path: PathBuf,
    name: String,
    options: V4lOptions,
    identity: DeviceIdentity,
    open: Option<Open>,
    backoff: Backoff,
    retry_at: Instant,
    seq: u64,
}

impl V4lSource {
    /// Opens the device, negotiates a format and starts streaming.
    pub fn open(path: &Path, options: V4lOptions) -> Result<Self, SourceError> {
        if let Err(cause) = std::fs::metadata(path) {
            return Err(match cause.kind() {
                std::io::ErrorKind::NotFound => SourceError::Missing {
                    path: path.to_path_buf(),
                },
                _ => SourceError::Unusable {
                    path: path.to_path_buf(),
                    reason: format!("cannot be read: {cause}"),
                },
            });
        }
        let (open, identity) = open_device(path, &options)?;
        Ok(Self {
            path: path.to_path_buf(),
            name: super::clip_name_of(path),
            options,
            identity,
            open: Some(open),
            backoff: Backoff::new(),
            retry_at: Instant::now(),
            seq: 0,
        })
    }

    /// Closes the stream after a loss and schedules the first reopen.
    fn lose_signal(&mut self, reason: String) -> SourceError {
        if let Some(open) = self.open.take() {
            open.close();
        }
        self.backoff = Backoff::new();
        self.retry_at = Instant::now() + self.backoff.next_delay();
        log::warn!("{}: {reason}; waiting for the grabber", self.path.display());
        SourceError::NoSignal {
            path: self.path.clone(),
            reason,
        }
    }

    /// One attempt to find and reopen the grabber, after waiting (at most
    /// a second, so that a stop request is noticed) for its turn.
    fn reconnect(&mut self) -> Result<(), SourceError> {
        let wait = self.retry_at.saturating_duration_since(Instant::now());
        std::thread::sleep(wait.min(Duration::from_secs(1)));
        if Instant::now() < self.retry_at {
            return Err(self.no_signal("waiting for the grabber"));
        }
        self.retry_at = Instant::now() + self.backoff.next_delay();
        let nodes: Vec<(PathBuf, DeviceIdentity)> = v4l::context::enum_devices()
            .iter()
            .filter_map(|node| Some((node.path().to_path_buf(), identity_of(node.path())?)))
            .collect();
        let Some(path) = find_again(&self.path, &self.identity, &nodes) else {
            return Err(self.no_signal("the grabber is not connected"));
        };
        match open_device(&path, &self.options) {
            Ok((open, _)) => {
                log::info!(
                    "{}: the grabber is back at {}",
                    self.path.display(),
                    path.display()
                );
                self.open = Some(open);
                self.backoff = Backoff::new();
                Ok(())
            }
            Err(e) => Err(self.no_signal(&format!("cannot reopen {}: {e}", path.display()))),
        }
    }

    fn no_signal(&self, reason: &str) -> SourceError {
        SourceError::NoSignal {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The device at `path` and what it says of itself, if it is a capture
/// device.
fn capture_device(path: &Path) -> Option<(Device, v4l::Capabilities)> {
    let device = Device::with_path(path).ok()?;
    let caps = device.query_caps().ok()?;
    caps.capabilities
        .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        .then_some((device, caps))
}

/// The card and bus of a device node, if it is a capture device.
fn identity_of(path: &Path) -> Option<DeviceIdentity> {
    let (_, caps) = capture_device(path)?;
    Some(DeviceIdentity {
        card: caps.card,
        bus: caps.bus,
    })
}

/// Opens `path`, negotiates the format and size, and starts streaming.
fn open_device(path: &Path, options: &V4lOptions) -> Result<(Open, DeviceIdentity), SourceError> {
    let io_error = |cause: std::io::Error| SourceError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let device_error = |reason: String| SourceError::Device {
        path: path.to_path_buf(),
        reason,
    };
    let device = Device::with_path(path).map_err(io_error)?;
    let caps = device
        .query_caps()
        .map_err(|cause| match cause.raw_os_error() {
            Some(ENOTTY) => device_error("not a V4L2 device".into()),
            _ => io_error(cause),
        })?;
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
    for &format in &options.formats {
        let mut wanted = current;
        wanted.fourcc = FourCC::new(&format.fourcc());
        if let Some((w, h)) = options.size {
            (wanted.width, wanted.height) = (w, h);
        }
        wanted.stride = 0;
        let Ok(got) = device.set_format(&wanted) else {
            continue;
        };
        // Drivers may silently answer with another format: trust only
        // what came back.
        if let Some(format) = PixelFormat::from_fourcc(got.fourcc.repr)
            && options.formats.contains(&format)
        {
            chosen = Some((format, got));
            break;
        }
    }
    let Some((format, got)) = chosen else {
        let asked: Vec<String> = options.formats.iter().map(ToString::to_string).collect();
        return Err(device_error(format!(
            "offers none of {} (current format {})",
            asked.join(", "),
            current.fourcc
        )));
    };
    if let Some((w, h)) = options.size
        && (got.width, got.height) != (w, h)
    {
        log::warn!(
            "{}: asked for {w}x{h}, the driver gives {}x{}",
            path.display(),
            got.width,
            got.height
        );
    }
    if let Some(fps) = options.fps
        && let Err(e) = device.set_params(&v4l::video::capture::Parameters::with_fps(fps))
    {
        log::warn!("{}: cannot set {fps} fps: {e}", path.display());
    }
    let layout = FrameLayout::negotiated(format, got.width, got.height, got.stride)
        .map_err(|e| device_error(e.to_string()))?;
    let (width, height) = (layout.width, layout.height);
    let mut stream =
        Stream::with_buffers(&device, Type::VideoCapture, BUFFERS).map_err(io_error)?;
    stream.set_timeout(FRAME_TIMEOUT);
    log::info!(
        "{}: '{}' {}x{} {format} (stride {})",
        path.display(),
        caps.card,
        width,
        height,
        layout.stride
    );
    let identity = DeviceIdentity {
        card: caps.card,
        bus: caps.bus,
    };
    Ok((
        Open {
            path: path.to_path_buf(),
            layout,
            stream,
        },
        identity,
    ))
}

impl FrameSource for V4lSource {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        if self.open.is_none() {
            self.reconnect()?;
        }
        let Some(open) = self.open.as_mut() else {
            return Err(self.no_signal("the grabber is not connected"));
        };
        let seq = self.seq;
        self.seq += 1;
        let layout = open.layout;
        let mut gray = Vec::with_capacity(layout.width * layout.height);
        let result = open.stream.next().map(|(buffer, meta)| {
            let used = (meta.bytesused as usize).min(buffer.len());
            pixels::to_gray(&buffer[..used], layout, &mut gray).map_err(|e| e.to_string())
        });
        match result {
            Ok(Ok(())) => Ok(GrayFrame::new(layout.width, layout.height, gray, seq)),
            Ok(Err(reason)) => Err(SourceError::BadFrame {
                path: self.path.clone(),
                index: seq,
                reason,
            }),
            Err(cause) => {
                let reason = match cause.raw_os_error() {
                    Some(ENODEV) => "the grabber was unplugged".to_string(),
                    _ if cause.kind() == std::io::ErrorKind::TimedOut => {
                        format!("no frame for {} s", FRAME_TIMEOUT.as_secs())
                    }
                    _ => format!("capture failed: {cause}"),
                };
                Err(self.lose_signal(reason))
            }
        }
    }

    fn clip_name(&self) -> &str {
        &self.name
    }
}

impl Drop for V4lSource {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            open.close();
        }
    }
}

/// One capture device as `pleura devices` lists it.
#[derive(Debug, Clone)]
pub struct DeviceListing {
    /// The device node.
    pub path: PathBuf,
    /// Card name and bus.
    pub identity: DeviceIdentity,
    /// The driver.
    pub driver: String,
    /// Each pixel format with its frame sizes (as the driver words them).
    pub formats: Vec<(String, Vec<String>)>,
}

/// The V4L2 capture devices of this machine, with their formats and sizes.
pub fn list_devices() -> Vec<DeviceListing> {
    let mut nodes = v4l::context::enum_devices();
    nodes.sort_by_key(|n| n.index());
    nodes
        .iter()
        .filter_map(|node| {
            let (device, caps) = capture_device(node.path())?;
            let formats = device
                .enum_formats()
                .unwrap_or_default()
                .into_iter()
                .map(|format| {
                    let sizes = device
                        .enum_framesizes(format.fourcc)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|size| size.size.to_string())
                        .collect();
                    (format!("{} ({})", format.fourcc, format.description), sizes)
                })
                .collect();
            Some(DeviceListing {
                path: node.path().to_path_buf(),
                identity: DeviceIdentity {
                    card: caps.card,
                    bus: caps.bus,
                },
                driver: caps.driver,
                formats,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(card: &str, bus: &str) -> DeviceIdentity {
        DeviceIdentity {
            card: card.into(),
            bus: bus.into(),
        }
    }

    #[test]
    fn a_grabber_is_found_again_at_its_path_or_by_its_name_and_bus() {
        let grabber = id("USB Video", "usb-1.2");
        let other = id("Webcam", "usb-1.3");
        let back_at_video2 = [
            (PathBuf::from("/dev/video0"), other.clone()),
            (PathBuf::from("/dev/video2"), grabber.clone()),
        ];
        assert_eq!(
            find_again(Path::new("/dev/video0"), &grabber, &back_at_video2),
            Some(PathBuf::from("/dev/video2")),
            "another device took its old node"
        );
        let back_at_video0 = [(PathBuf::from("/dev/video0"), grabber.clone())];
        assert_eq!(
            find_again(Path::new("/dev/video0"), &grabber, &back_at_video0),
            Some(PathBuf::from("/dev/video0"))
        );
        let same_card_other_port = [(PathBuf::from("/dev/video0"), id("USB Video", "usb-1.4"))];
        assert_eq!(
            find_again(Path::new("/dev/video0"), &grabber, &same_card_other_port),
            None
        );
    }

    #[test]
    fn reconnection_backs_off_to_one_second() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..7)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [250, 500, 1000, 1000, 1000, 1000, 1000]);
    }

    #[test]
    fn capture_options_parse() {
        let options = V4lOptions::parse("format=MJPG+YUYV,size=1280x720,fps=30").unwrap();
        assert_eq!(options.formats, [PixelFormat::Mjpeg, PixelFormat::Yuyv]);
        assert_eq!(options.size, Some((1280, 720)));
        assert_eq!(options.fps, Some(30));
        assert_eq!(V4lOptions::parse("").unwrap(), V4lOptions::default());
        for bad in ["format=H264", "size=720p", "fps=fast", "zoom=2", "size"] {
            assert!(V4lOptions::parse(bad).is_err(), "{bad} accepted");
        }
        // The same bounds as a board profile's `capture.size` and `capture.fps`.
        for bad in ["size=100000x100000", "size=8x8", "fps=0", "fps=100000"] {
            let err = V4lOptions::parse(bad).unwrap_err();
            assert!(err.to_string().contains(" to "), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_device_is_named() {
        let Err(err) = V4lSource::open(Path::new("/dev/video-pleura-none"), V4lOptions::default())
        else {
            panic!("a missing device opened");
        };
        assert!(err.to_string().contains("/dev/video-pleura-none"), "{err}");
    }

    #[test]
    fn a_device_that_is_not_a_capture_device_is_refused_by_name() {
        let Err(err) = V4lSource::open(Path::new("/dev/null"), V4lOptions::default()) else {
            panic!("/dev/null opened as a grabber");
        };
        assert!(
            err.to_string().contains("/dev/null: not a V4L2 device"),
            "{err}"
        );
    }
}
