//! Board profiles: what one kind of unit has and how Pleura uses it.
//!
//! A profile (`boards/NAME.toml`) names the board's CPU and build target,
//! the threads to use, the model file, the display (backend, rotation,
//! screen size), the grabber (device, format preferences, size, rate), the
//! input devices and their key bindings, and where data and update slots
//! live. `pleura --board NAME` picks one; otherwise the board is recognised
//! from `/proc/device-tree/model`, and a PC falls back to `x86_64-dev`.
//!
//! A malformed profile is refused with the file, the line and the field.

use crate::display::{DisplaySpec, Rotation};
use crate::input::{KeyMap, KeyMapError};
use crate::model::Precision;
use crate::source::pixels::PixelFormat;
use crate::source::{SourceSpec, V4lOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The profile used when no board is recognised.
pub const FALLBACK: &str = "x86_64-dev";

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The profile file could not be read.
    #[error("board profile {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// The profile is not valid: the message names the line and the field.
    #[error("board profile {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A board name that is not a plain profile name: it could name a file
    /// outside the profiles' folder.
    #[error("board name '{name}' is not a plain profile name: {why} (there are: {known})")]
    BadName {
        /// The name given (`--board` or `PLEURA_BOARD`).
        name: String,
        /// What is wrong with it.
        why: &'static str,
        /// The profiles that exist.
        known: String,
    },
    /// No profile of that name.
    #[error("no board profile '{name}' in {dir} (there are: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Where profiles were looked for.
        dir: PathBuf,
        /// The profiles that exist.
        known: String,
    },
}

/// One board's profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Short name (the file's stem).
    pub name: String,
    /// What `/proc/device-tree/model` starts with on this board (none for PCs).
    #[serde(default)]
    pub model_prefixes: Vec<String>,
    /// The Rust target triple to build for.
    pub target: String,
    /// The CPU.
    pub cpu: Cpu,
    /// Inference threads.
    pub threads: usize,
    /// The model file, relative to the installation.
    pub model: PathBuf,
    /// The inference path `pleura run` takes (`int8`, `f32` or `q8`).
    #[serde(default = "int8")]
    pub precision: Precision,
    /// The screen.
    pub display: DisplayProfile,
    /// The grabber.
    pub capture: CaptureProfile,
    /// Buttons, keypads and touchscreens.
    #[serde(default)]
    pub input: InputProfile,
    /// Where things are kept.
    pub paths: PathsProfile,
    /// How a firmware update proves itself.
    #[serde(default)]
    pub update: UpdateProfile,
}

/// The fast path, for profiles that do not name one.
fn int8() -> Precision {
    Precision::Int8
}

/// The board's CPU.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Core names, e.g. `["cortex-a76", "cortex-a55"]`.
    pub cores: Vec<String>,
    /// Instruction-set features the kernels may rely on, e.g. `["neon", "dotprod"]`.
    pub features: Vec<String>,
}

/// The board's screen.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayProfile {
    /// A `--display` specification: `fb:/dev/fb0`, `drm:/dev/dri/card0`,
    /// `window`, `auto`, …
    pub backend: String,
    /// Mounting rotation, degrees clockwise.
    #[serde(default)]
    pub rotation: u16,
    /// Screen size for headless pictures, `[width, height]`.
    pub size: [u32; 2],
}

/// The board's grabber.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureProfile {
    /// The device node.
    pub device: PathBuf,
    /// Pixel formats in order of preference (`GREY`, `YUYV`, `MJPG`, …).
    pub formats: Vec<String>,
    /// Frame size `[width, height]`; the device's own when absent.
    pub size: Option<[u32; 2]>,
    /// Frames per second; the device's own when absent.
    pub fps: Option<u32>,
}

/// The board's input devices and key bindings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputProfile {
    /// Input device nodes (`/dev/input/by-path/…` or `/dev/input/eventN`).
    #[serde(default)]
    pub devices: Vec<PathBuf>,
    /// Command name → keys (one character, a `KEY_…` name or a code); the
    /// default key map when empty.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
}

/// Where the unit keeps its data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsProfile {
    /// Reports, logs and the exam journal.
    pub data: PathBuf,
    /// The A/B installation slots of signed updates.
    pub slots: PathBuf,
}

/// How a new firmware version is put on trial after an update.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    /// Frames the new version must score before it is confirmed.
    pub health_frames: u64,
    /// Seconds it has to score them after it starts.
    pub health_timeout_s: u64,
    /// Starts it gets before the unit rolls back to the previous version.
    pub max_starts: u32,
}

impl Default for UpdateProfile {
    fn default() -> Self {
        Self {
            health_frames: 100,
            health_timeout_s: 120,
            max_starts: 3,
        }
    }
}

impl BoardProfile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Self, BoardError> {
        let text = std::fs::read_to_string(path).map_err(|cause| BoardError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let profile: BoardProfile = toml::from_str(&text).map_err(|e| BoardError::Invalid {
            path: path.to_path_buf(),
            message: describe(&text, &e),
        })?;
        let invalid = |message: String| BoardError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if profile.threads == 0 {
            return Err(invalid("field `threads` must be at least 1".into()));
        }
        if let Err(e) = profile.key_map() {
            return Err(invalid(format!("field `input.keys`: {e}")));
        }
        if ![0, 90, 180, 270].contains(&profile.display.rotation) {
            return Err(invalid(format!(
                "field `display.rotation` is {}, not 0, 90, 180 or 270",
                profile.display.rotation
            )));
        }
        if let Err(e) = profile.display_spec() {
            return Err(invalid(format!("field `display.backend`: {e}")));
        }
        if let Err(e) = profile.capture_formats() {
            return Err(invalid(format!("field `capture.formats`: {e}")));
        }
        if profile.update.health_frames == 0 || profile.update.max_starts == 0 {
            return Err(invalid(
                "fields `update.health_frames` and `update.max_starts` must be at least 1".into(),
            ));
        }
        Ok(profile)
    }

    /// The screen: the backend, turned by the mounting rotation.
    pub fn display_spec(&self) -> Result<DisplaySpec, crate::display::DisplayError> {
        let rotation: Rotation = self.display.rotation.to_string().parse()?;
        Ok(match self.display.backend.parse()? {
            DisplaySpec::Framebuffer { path, .. } => DisplaySpec::Framebuffer { path, rotation },
            DisplaySpec::Kms { path, .. } => DisplaySpec::Kms { path, rotation },
            other => other,
        })
    }

    /// The grabber, with the board's format preferences, size and rate.
    pub fn source_spec(&self) -> SourceSpec {
        let options = V4lOptions {
            formats: self.capture_formats().unwrap_or_default(),
            size: self.capture.size.map(|[w, h]| (w, h)),
            fps: self.capture.fps,
        };
        SourceSpec::V4l(self.capture.device.clone(), options)
    }

    /// The exam journal, in the data folder.
    pub fn journal(&self) -> PathBuf {
        self.paths.data.join("exam.jsonl")
    }

    fn capture_formats(&self) -> Result<Vec<PixelFormat>, String> {
        self.capture.formats.iter().map(|f| f.parse()).collect()
    }

    /// The key map of the board's buttons (the default map when the
    /// profile binds none).
    pub fn key_map(&self) -> Result<KeyMap, KeyMapError> {
        if self.input.keys.is_empty() {
            return Ok(KeyMap::default());
        }
        KeyMap::from_bindings(
            self.input
                .keys
                .iter()
                .map(|(command, keys)| (command.as_str(), keys.as_slice())),
        )
    }

    /// The profile `name` in `dir`. The name must be a plain name (see
    /// [`check_name`]): `--board ../x` never reads outside `dir`.
    pub fn named(dir: &Path, name: &str) -> Result<Self, BoardError> {
        if let Err(why) = check_name(name) {
            return Err(BoardError::BadName {
                name: name.to_string(),
                why,
                known: names(dir).join(", "),
            });
        }
        let path = dir.join(format!("{name}.toml"));
        if !path.is_file() {
            return Err(BoardError::Unknown {
                name: name.to_string(),
                dir: dir.to_path_buf(),
                known: names(dir).join(", "),
            });
        }
        Self::load(&path)
    }

    /// The profile of this machine: the one whose model prefix matches the
    /// device tree's model, else [`FALLBACK`].
    pub fn detect(dir: &Path, device_tree_model: Option<&str>) -> Result<Self, BoardError> {
        if let Some(model) = device_tree_model {
            let model = model.trim_end_matches('\0').trim();
            for name in names(dir) {
                let profile = Self::named(dir, &name)?;
                if profile
                    .model_prefixes
                    .iter()
                    .any(|p| model.starts_with(p.as_str()))
                {
                    return Ok(profile);
                }
            }
            log::warn!("no board profile for '{model}'; using {FALLBACK}");
        }
        Self::named(dir, FALLBACK)
    }
}

/// Refuses a board name that is not a plain file-name stem: empty, `.` or
/// `..`, or holding a path separator, a NUL, or a leading dot (a hidden
/// file). Returns what is wrong.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.contains('/') || name.contains('\\') {
        Err("it holds a path separator")
    } else if name.contains('\0') {
        Err("it holds a NUL character")
    } else if name.starts_with('.') {
        Err("it starts with a dot ('..' and hidden files are not profiles)")
    } else {
        Ok(())
    }
}

/// The profile names in `dir` (plain names only), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            if path.extension()? != "toml" {
                return None;
            }
            let name = path.file_stem()?.to_string_lossy().into_owned();
            check_name(&name).is_ok().then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// The parser's message with the line number of where it stopped.
fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line} (`{source}`): {message}")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boards() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("boards")
    }

    #[test]
    fn every_shipped_profile_loads() {
        for name in ["rpi4", "rpi5", "rk3588", "rpi-zero2", "x86_64-dev"] {
            let profile = BoardProfile::named(&boards(), name).unwrap();
            assert_eq!(profile.name, name);
        }
        let rpi4 = BoardProfile::named(&boards(), "rpi4").unwrap();
        assert!(
            !rpi4.cpu.features.iter().any(|f| f == "dotprod"),
            "the A72 has no dotprod"
        );
        assert_eq!(rpi4.target, "aarch64-unknown-linux-gnu");
    }

    #[test]
    fn the_board_is_recognised_from_the_device_tree() {
        let detect = |model| BoardProfile::detect(&boards(), model).unwrap().name;
        assert_eq!(detect(Some("Raspberry Pi 4 Model B Rev 1.5\0")), "rpi4");
        assert_eq!(detect(Some("Raspberry Pi 5 Model B Rev 1.0\0")), "rpi5");
        assert_eq!(detect(Some("Raspberry Pi Zero 2 W Rev 1.0\0")), "rpi-zero2");
        assert_eq!(detect(Some("Radxa ROCK 5B\0")), "rk3588");
        assert_eq!(detect(Some("Some Other Board\0")), FALLBACK);
        assert_eq!(detect(None), FALLBACK);
    }

    #[test]
    fn a_malformed_profile_names_the_file_the_line_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let good = std::fs::read_to_string(boards().join("rpi4.toml")).unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, good.replace("threads = 4", "threads = \"four\"")).unwrap();
        let err = BoardProfile::load(&path).unwrap_err().to_string();
        let line = good.lines().position(|l| l.starts_with("threads")).unwrap() + 1;
        assert!(
            err.contains("bad.toml") && err.contains(&format!("line {line}")),
            "{err}"
        );
        assert!(err.contains("threads"), "the field is named: {err}");
        std::fs::write(&path, good.replace("threads = 4", "threds = 4")).unwrap();
        let err = BoardProfile::load(&path).unwrap_err().to_string();
        assert!(err.contains("threds"), "{err}");
        std::fs::write(&path, good.replace("KEY_PAUSE", "KEY_PAWS")).unwrap();
        let err = BoardProfile::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("input.keys") && err.contains("KEY_PAWS"),
            "{err}"
        );
        std::fs::write(&path, good.replace("rotation = 0", "rotation = 45")).unwrap();
        let err = BoardProfile::load(&path).unwrap_err().to_string();
        assert!(err.contains("display.rotation"), "{err}");
        let err = BoardProfile::named(&boards(), "rpi9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rpi9") && err.contains("rpi4"), "{err}");
    }

    #[test]
    fn a_board_name_that_is_not_a_plain_name_is_refused_before_any_file_is_read() {
        // A profile outside the boards folder that a path could reach.
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("boards");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(boards().join("rpi4.toml"), dir.join("rpi4.toml")).unwrap();
        std::fs::copy(boards().join("rpi4.toml"), outer.path().join("x.toml")).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::copy(boards().join("rpi4.toml"), dir.join("sub/y.toml")).unwrap();
        std::fs::copy(boards().join("rpi4.toml"), dir.join(".hidden.toml")).unwrap();
        let absolute = outer.path().join("x");
        for (name, why) in [
            ("../x", "path separator"),
            ("..", "starts with a dot"),
            (".", "starts with a dot"),
            (".hidden", "starts with a dot"),
            ("", "empty"),
            ("sub/y", "path separator"),
            (absolute.to_str().unwrap(), "path separator"),
            ("..\\x", "path separator"),
            ("rpi4\0", "NUL"),
        ] {
            let err = BoardProfile::named(&dir, name).unwrap_err();
            assert!(matches!(err, BoardError::BadName { .. }), "{name:?}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("'{name}'")) && text.contains(why) && text.contains("rpi4"),
                "{name:?}: {text}"
            );
        }
        assert_eq!(BoardProfile::named(&dir, "rpi4").unwrap().name, "rpi4");
    }
}
