//! Frame sources: where frames come from.
//!
//! Every source yields [`GrayFrame`]s through the [`FrameSource`] trait, so
//! that the rest of the program never knows whether frames come from a clip
//! on disk, a folder of stills or a capture device. A source never crops,
//! scales or scores; it only turns its input into gray frames, in order.
//!
//! Sources are chosen with a [`SourceSpec`] (`--source` on the command
//! line): `file:PATH`, `dir:PATH`, `v4l:/dev/videoN`, or `demo` for the
//! bundled demo clips.

mod dicom;
mod dir;
mod file;
mod phantom;
pub mod pixels;
mod playlist;
mod v4l;

pub use dicom::{DicomSource, is_dicom};
pub use dir::DirSource;
pub use file::{ClipInfo, FileSource, decode_clip, evenly_spaced};
pub use phantom::PhantomSource;
pub use playlist::Playlist;
pub use v4l::{DeviceIdentity, DeviceListing, V4lOptions, V4lSource, list_devices};

use crate::frame::GrayFrame;
use crate::phantom::PhantomParams;
use std::path::{Path, PathBuf};

/// Why a source could not deliver a frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The clip, folder or device does not exist (the operating system
    /// said so: nothing else is reported as missing).
    #[error("{path}: no such file or folder")]
    Missing {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The path exists but is the wrong kind of thing (a folder given as
    /// a clip, a clip given as a folder, a device given as a clip), or it
    /// cannot be looked at (no permission).
    #[error("{path}: {reason}")]
    Unusable {
        /// The path that was asked for.
        path: PathBuf,
        /// What it is, and what was needed; or the operating system's reason.
        reason: String,
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
    /// Reading from the decoder or device failed midway.
    #[error("{path}: read error: {cause}")]
    Io {
        /// The clip or device.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// One frame was unreadable; the stream itself goes on.
    #[error("{path}: frame {index} skipped: {reason}")]
    BadFrame {
        /// The file or device the frame came from.
        path: PathBuf,
        /// Position of the frame in its stream.
        index: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// A capture device exists but cannot deliver gray video.
    #[error("{path}: {reason}")]
    Device {
        /// The device node.
        path: PathBuf,
        /// What the device refused or lacks.
        reason: String,
    },
    /// A live device lost its signal (timeout, unplug); the source tries
    /// to get it back, and the run goes on without frames meanwhile.
    #[error("{path}: no signal: {reason}")]
    NoSignal {
        /// The device.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// A source whose options are wrong.
    #[error("source '{spec}': {cause}")]
    Options {
        /// The `--source` specification.
        spec: String,
        /// What is wrong with its options.
        cause: crate::spec::SpecError,
    },
    /// A `--source` specification that names no known source.
    #[error(
        "unknown source '{0}' (use demo, file:PATH, dir:PATH, v4l:/dev/videoN or phantom:score=N)"
    )]
    Spec(String),
}

impl SourceError {
    /// Whether only one frame was lost and the stream can go on.
    pub fn is_frame_error(&self) -> bool {
        matches!(self, SourceError::BadFrame { .. })
    }

    /// Whether a live device lost its signal and may come back.
    pub fn is_signal_loss(&self) -> bool {
        matches!(self, SourceError::NoSignal { .. })
    }
}

/// Anything that yields grayscale frames in order.
pub trait FrameSource: Send {
    /// The next frame, or `Ok(None)` at the end of the stream. A
    /// [`SourceError::BadFrame`] loses that frame only; any other error ends
    /// the stream.
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError>;

    /// The clip the last frame belongs to. A new name starts a new clip:
    /// its own sector, its own clip score.
    fn clip_name(&self) -> &str;

    /// The frame rate a recording was made at, so that it can be replayed
    /// in real time; `None` for live sources, which run at their own pace.
    fn frame_rate(&self) -> Option<f64> {
        None
    }
}

/// Which source to open, as written after `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The demo clips bundled with Pleura, one after the other.
    Demo,
    /// A clip that ffmpeg decodes.
    File(PathBuf),
    /// A folder of PNG or JPEG frames, in name order.
    Dir(PathBuf),
    /// A V4L2 capture device.
    V4l(PathBuf, V4lOptions),
    /// A synthetic phantom clip.
    Phantom(PhantomParams),
    /// A DICOM file (US multi-frame or single-frame).
    Dicom(PathBuf),
}

impl std::str::FromStr for SourceSpec {
    type Err = SourceError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let options_error = |cause| SourceError::Options {
            spec: spec.to_string(),
            cause,
        };
        let path = |p: &str| {
            (!p.is_empty())
                .then(|| PathBuf::from(p))
                .ok_or_else(|| SourceError::Spec(spec.to_string()))
        };
        match spec.split_once(':') {
            None if spec == "demo" => Ok(SourceSpec::Demo),
            None if spec == "phantom" => Ok(SourceSpec::Phantom(PhantomParams::default())),
            Some(("phantom", options)) => crate::phantom::parse_options(options)
                .map(SourceSpec::Phantom)
                .map_err(options_error),
            Some(("file", p)) => path(p).map(SourceSpec::File),
            Some(("dir", p)) => path(p).map(SourceSpec::Dir),
            Some(("dicom", p)) => path(p).map(SourceSpec::Dicom),
            Some(("v4l", rest)) => {
                let (device, options) = rest.split_once(',').unwrap_or((rest, ""));
                let options = V4lOptions::parse(options).map_err(options_error)?;
                path(device).map(|p| SourceSpec::V4l(p, options))
            }
            _ => Err(SourceError::Spec(spec.to_string())),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Demo => write!(f, "demo"),
            SourceSpec::File(p) => write!(f, "file:{}", p.display()),
            SourceSpec::Dir(p) => write!(f, "dir:{}", p.display()),
            SourceSpec::Dicom(p) => write!(f, "dicom:{}", p.display()),
            SourceSpec::V4l(p, _) => write!(f, "v4l:{}", p.display()),
            SourceSpec::Phantom(p) => write!(
                f,
                "phantom:score={},probe={:?},frames={},seed={},size={}x{}",
                p.score, p.probe, p.frames, p.seed, p.width, p.height
            ),
        }
    }
}

impl SourceSpec {
    /// Opens the source; `demo_dir` is where the demo clips live.
    pub fn open(&self, demo_dir: &Path) -> Result<Box<dyn FrameSource>, SourceError> {
        Ok(match self {
            SourceSpec::Demo => Box::new(Playlist::demo(demo_dir)?),
            SourceSpec::File(path) => Box::new(Playlist::new(vec![path.clone()])?),
            SourceSpec::Dir(path) => Box::new(DirSource::open(path)?),
            SourceSpec::Dicom(path) => Box::new(DicomSource::open(path)?),
            SourceSpec::V4l(path, options) => Box::new(V4lSource::open(path, options.clone())?),
            SourceSpec::Phantom(params) => Box::new(PhantomSource::new(*params)),
        })
    }
}

/// What a source needs a path to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A regular file (a clip).
    File,
    /// A folder.
    Folder,
}

/// Checks that `path` is a `want` (following symlinks): missing only when
/// the operating system says it does not exist; otherwise what it is and
/// what was needed (`what`: e.g. "a clip file", "a folder of PNG or JPEG
/// frames"), or why it cannot be looked at.
fn check_kind(path: &Path, want: Kind, what: &str) -> Result<(), SourceError> {
    let unusable = |reason: String| SourceError::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|cause| match cause.kind() {
        std::io::ErrorKind::NotFound => SourceError::Missing {
            path: path.to_path_buf(),
        },
        _ => unusable(format!("cannot be read: {cause}")),
    })?;
    let fits = match want {
        Kind::File => meta.is_file(),
        Kind::Folder => meta.is_dir(),
    };
    if fits {
        return Ok(());
    }
    Err(unusable(format!(
        "is {}, not {what}",
        crate::file_kind::kind_name(meta.file_type())
    )))
}

/// The files in `dir` whose extension is one of `extensions` (lower case),
/// in name order; an error names the folder when there are none (`what`
/// says what was looked for).
fn files_in(dir: &Path, extensions: &[&str], what: &str) -> Result<Vec<PathBuf>, SourceError> {
    check_kind(dir, Kind::Folder, &format!("a folder of {what}"))?;
    let entries = std::fs::read_dir(dir).map_err(|cause| SourceError::Unusable {
        path: dir.to_path_buf(),
        reason: format!("cannot be read: {cause}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SourceError::Decode {
            path: dir.to_path_buf(),
            reason: format!("no {what} in this folder"),
        });
    }
    Ok(files)
}

/// The name a clip is known by in reports: its file name.
fn clip_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs_parse_by_prefix() {
        assert_eq!("demo".parse::<SourceSpec>().unwrap(), SourceSpec::Demo);
        assert_eq!(
            "file:a/b.mp4".parse::<SourceSpec>().unwrap(),
            SourceSpec::File("a/b.mp4".into())
        );
        assert_eq!(
            "dir:frames".parse::<SourceSpec>().unwrap(),
            SourceSpec::Dir("frames".into())
        );
        assert_eq!(
            "v4l:/dev/video0".parse::<SourceSpec>().unwrap(),
            SourceSpec::V4l("/dev/video0".into(), V4lOptions::default())
        );
        let SourceSpec::Phantom(p) = "phantom:score=2,probe=linear,seed=9".parse().unwrap() else {
            panic!("not a phantom");
        };
        assert_eq!(
            (p.score, p.probe, p.seed),
            (2, crate::phantom::Probe::Linear, 9)
        );
    }

    #[test]
    fn a_path_of_the_wrong_kind_says_what_it_is_and_only_a_missing_one_says_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clip.mp4");
        std::fs::write(&file, b"x").unwrap();
        let missing = dir.path().join("gone");
        let message = |path: &Path, want, what| {
            check_kind(path, want, what)
                .map_err(|e| (matches!(e, SourceError::Missing { .. }), e.to_string()))
        };
        assert!(message(&file, Kind::File, "a clip file").is_ok());
        assert!(message(dir.path(), Kind::Folder, "a folder").is_ok());
        let cases: [(&Path, Kind, &str); 5] = [
            (dir.path(), Kind::File, "is a folder, not a clip file"),
            (
                &file,
                Kind::Folder,
                "is a regular file, not a folder of frames",
            ),
            (
                Path::new("/dev/zero"),
                Kind::File,
                "is a character device, not a clip file",
            ),
            (
                Path::new("/dev/zero"),
                Kind::Folder,
                "is a character device, not a folder of frames",
            ),
            (
                &file.join("inside"),
                Kind::File,
                "cannot be read: Not a directory",
            ),
        ];
        for (path, want, expected) in cases {
            let what = if want == Kind::File {
                "a clip file"
            } else {
                "a folder of frames"
            };
            let (is_missing, text) = message(path, want, what).unwrap_err();
            assert!(!is_missing, "{}: {text}", path.display());
            assert!(
                text.contains(expected) && !text.contains("no such"),
                "{text}"
            );
            assert!(
                text.starts_with(&path.display().to_string()),
                "names the path: {text}"
            );
        }
        let (is_missing, text) = message(&missing, Kind::File, "a clip file").unwrap_err();
        assert!(is_missing && text.contains("no such file"), "{text}");
    }

    #[test]
    fn unknown_or_empty_specs_are_refused_with_the_choices() {
        for bad in ["", "file:", "clip.mp4", "rtsp://x"] {
            let err = bad.parse::<SourceSpec>().unwrap_err();
            assert!(err.to_string().contains("file:PATH"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_known_source_with_a_bad_option_names_the_option_and_its_rule() {
        for (bad, expected) in [
            ("phantom:score=7", "phantom score '7': use 0 to 3"),
            ("phantom:zoom=2", "unknown phantom option 'zoom'"),
            ("v4l:/dev/video0,fps=0", "v4l fps '0': use 1 to 240"),
            ("v4l:/dev/video0,format=H264", "unknown pixel format 'H264'"),
        ] {
            let err = bad.parse::<SourceSpec>().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("source '{bad}': ")) && err.contains(expected),
                "{bad}: {err}"
            );
        }
    }
}
