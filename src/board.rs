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
//! Every number and list is checked against what a unit can use as it is
//! read ([`THREADS`], [`crate::frame::SIDES`] for both sizes,
//! [`V4lOptions::FRAME_RATES`], [`HEALTH_FRAMES`], [`HEALTH_TIMEOUT_S`],
//! [`MAX_STARTS`], key codes up to `KEY_MAX`), so the parser's error
//! carries the line; a profile larger than [`MAX_PROFILE_BYTES`] is not
//! read.

use crate::display::{DisplaySpec, Rotation};
use crate::input::{KeyMap, KeyMapError};
use crate::model::{Precision, THREADS};
use crate::source::pixels::PixelFormat;
use crate::source::{SourceSpec, V4lOptions};
use crate::spec::{AeAddress, HostPort, Named};
use serde::{Deserialize, Deserializer, de::Error as _};
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The profile used when no board is recognised.
pub const FALLBACK: &str = "x86_64-dev";
/// Frames the self-test of an update may be asked to score (100 by
/// default; 10 000 takes minutes even on the fastest board).
pub const HEALTH_FRAMES: RangeInclusive<u64> = 1..=10_000;
/// Seconds the self-test may be given (120 by default; at most an hour).
pub const HEALTH_TIMEOUT_S: RangeInclusive<u64> = 1..=3600;
/// Starts a version on trial may get before the rollback (3 by default;
/// more than 10 keeps a broken version running for too long).
pub const MAX_STARTS: RangeInclusive<u64> = 1..=10;
/// The largest profile file read: the shipped ones are about 1 KiB.
pub const MAX_PROFILE_BYTES: u64 = 64 * 1024;

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
    /// What `/proc/device-tree/model` starts with on this board (none for
    /// PCs); an empty prefix would match every board and is refused.
    #[serde(default, deserialize_with = "model_prefixes")]
    pub model_prefixes: Vec<String>,
    /// The Rust target triple to build for.
    pub target: String,
    /// The CPU.
    pub cpu: Cpu,
    /// Inference threads ([`THREADS`]).
    #[serde(deserialize_with = "threads")]
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
    /// How results reach the hospital.
    #[serde(default)]
    pub hospital: HospitalProfile,
}

/// How the unit's results reach the hospital's systems.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HospitalProfile {
    /// This unit's DICOM AE title, written in every object it makes
    /// ([`crate::spec::ae_title`]); `PLEURA` when absent.
    #[serde(default = "station_ae", deserialize_with = "ae_title")]
    pub station_ae: String,
    /// The institution's name, written in every object.
    #[serde(default)]
    pub institution: Option<String>,
    /// The PACS finished exams are stored on, `AE@HOST:PORT`.
    #[serde(default, deserialize_with = "optional_spec")]
    pub pacs: Option<AeAddress>,
    /// The HL7 receiver (interface engine) results go to, `HOST:PORT`.
    #[serde(default, deserialize_with = "optional_spec")]
    pub hl7: Option<HostPort>,
    /// The modality worklist queried when an exam starts, `AE@HOST:PORT`.
    #[serde(default, deserialize_with = "optional_spec")]
    pub worklist: Option<AeAddress>,
    /// The receiving application of HL7 messages (MSH-5).
    #[serde(default)]
    pub hl7_application: Option<String>,
    /// The receiving facility of HL7 messages (MSH-6).
    #[serde(default)]
    pub hl7_facility: Option<String>,
    /// DICOM over TLS: the certificates (PEM) the PACS and worklist
    /// certificates must chain to. Plain TCP when absent.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// This unit's certificate chain (PEM), for peers that ask for one.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    /// This unit's private key (PEM), with `tls_certificate`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl Default for HospitalProfile {
    fn default() -> Self {
        Self {
            station_ae: station_ae(),
            institution: None,
            pacs: None,
            hl7: None,
            worklist: None,
            hl7_application: None,
            hl7_facility: None,
            tls_ca: None,
            tls_certificate: None,
            tls_key: None,
        }
    }
}

fn station_ae() -> String {
    "PLEURA".into()
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
    #[serde(deserialize_with = "display_backend")]
    pub backend: String,
    /// Mounting rotation, degrees clockwise: 0, 90, 180 or 270.
    #[serde(default, deserialize_with = "rotation")]
    pub rotation: Rotation,
    /// Screen size for headless pictures, `[width, height]`, each side in
    /// [`crate::frame::SIDES`] (the rule of `--screen`).
    #[serde(deserialize_with = "size")]
    pub size: [u32; 2],
}

/// The board's grabber.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureProfile {
    /// The device node.
    pub device: PathBuf,
    /// Pixel formats in order of preference (`GREY`, `YUYV`, `MJPG`, …);
    /// at least one.
    #[serde(deserialize_with = "capture_formats")]
    pub formats: Vec<PixelFormat>,
    /// Frame size `[width, height]`, each side in [`crate::frame::SIDES`];
    /// the device's own when absent.
    #[serde(default, deserialize_with = "optional_size")]
    pub size: Option<[u32; 2]>,
    /// Frames per second, in [`V4lOptions::FRAME_RATES`]; the device's own
    /// when absent.
    #[serde(default, deserialize_with = "optional_fps")]
    pub fps: Option<u32>,
    /// What a run without `--source` does when the device is not there.
    #[serde(default)]
    pub when_absent: WhenAbsent,
}

/// What a run without `--source` does when the board's grabber is not
/// there (`[capture] when_absent`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenAbsent {
    /// Refuse to run, naming the device: a unit without its grabber is
    /// broken, and must say so.
    #[default]
    Fail,
    /// Play the demo clips, and log why: a development PC has no grabber.
    Demo,
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
    #[serde(default, deserialize_with = "keys")]
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
    /// Frames the new version must score before it is confirmed
    /// ([`HEALTH_FRAMES`]).
    #[serde(deserialize_with = "health_frames")]
    pub health_frames: u64,
    /// Seconds it has to score them after it starts ([`HEALTH_TIMEOUT_S`]).
    #[serde(deserialize_with = "health_timeout_s")]
    pub health_timeout_s: u64,
    /// Starts it gets before the unit rolls back to the previous version
    /// ([`MAX_STARTS`]).
    #[serde(deserialize_with = "max_starts")]
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
    /// Reads and checks a profile file (a regular file of at most
    /// [`MAX_PROFILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Self, BoardError> {
        let invalid = |message: String| BoardError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let read = |cause| BoardError::Read {
            path: path.to_path_buf(),
            cause,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        if !file.metadata().map_err(read)?.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        let mut bytes = Vec::new();
        file.take(MAX_PROFILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Err(invalid(format!(
                "larger than {} KiB: not a board profile",
                MAX_PROFILE_BYTES / 1024
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        toml::from_str(&text).map_err(|e| invalid(describe(&text, &e)))
    }

    /// The screen: the backend, turned by the mounting rotation.
    pub fn display_spec(&self) -> Result<DisplaySpec, crate::display::DisplayError> {
        let rotation = self.display.rotation;
        Ok(match self.display.backend.parse()? {
            DisplaySpec::Framebuffer { path, .. } => DisplaySpec::Framebuffer { path, rotation },
            DisplaySpec::Kms { path, .. } => DisplaySpec::Kms { path, rotation },
            other => other,
        })
    }

    /// The grabber, with the board's format preferences, size and rate.
    pub fn source_spec(&self) -> SourceSpec {
        let options = V4lOptions {
            formats: self.capture.formats.clone(),
            size: self.capture.size.map(|[w, h]| (w, h)),
            fps: self.capture.fps,
        };
        SourceSpec::V4l(self.capture.device.clone(), options)
    }

    /// The exam journal, in the data folder.
    pub fn journal(&self) -> PathBuf {
        self.paths.data.join("exam.jsonl")
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

/// A number of a profile field, within `range`.
fn within<'de, D: Deserializer<'de>>(
    deserializer: D,
    field: &str,
    range: RangeInclusive<u64>,
) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(D::Error::custom(format!(
            "field `{field}` is {value}: use {} to {}",
            range.start(),
            range.end()
        )))
    }
}

fn threads<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    within(d, "threads", THREADS).map(|n| n as usize)
}

fn health_frames<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    within(d, "update.health_frames", HEALTH_FRAMES)
}

fn health_timeout_s<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    within(d, "update.health_timeout_s", HEALTH_TIMEOUT_S)
}

fn max_starts<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    within(d, "update.max_starts", MAX_STARTS).map(|n| n as u32)
}

/// A text field in one of the `spec` formats (`AE@HOST:PORT`, `HOST:PORT`).
fn optional_spec<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = crate::spec::SpecError>,
{
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(D::Error::custom)
}

fn ae_title<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    crate::spec::ae_title(&text)
        .map_err(|e| D::Error::custom(format!("field `hospital.station_ae`: {e}")))
}

fn rotation<'de, D: Deserializer<'de>>(d: D) -> Result<Rotation, D::Error> {
    let degrees = u64::deserialize(d)?;
    Rotation::from_name(&degrees.to_string()).map_err(|_| {
        D::Error::custom(format!(
            "field `display.rotation` is {degrees}, not {}",
            Rotation::choices()
        ))
    })
}

/// `[width, height]`, exactly two numbers, each side in [`crate::frame::SIDES`].
fn checked_size<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<[u32; 2], D::Error> {
    let numbers = Vec::<u64>::deserialize(d)?;
    let [width, height] = numbers[..] else {
        return Err(D::Error::custom(format!(
            "field `{field}` has {} numbers; a size is [width, height]",
            numbers.len()
        )));
    };
    crate::frame::check_size(width, height)
        .map(|(w, h)| [w as u32, h as u32])
        .map_err(|e| D::Error::custom(format!("field `{field}`: {e}")))
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<[u32; 2], D::Error> {
    checked_size(d, "display.size")
}

fn optional_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u32; 2]>, D::Error> {
    checked_size(d, "capture.size").map(Some)
}

fn optional_fps<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let fps = u64::deserialize(d)?;
    V4lOptions::check_fps(fps)
        .map(Some)
        .map_err(|e| D::Error::custom(format!("field `capture.fps`: {e}")))
}

fn display_backend<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let backend = String::deserialize(d)?;
    match backend.parse::<DisplaySpec>() {
        Ok(_) => Ok(backend),
        Err(e) => Err(D::Error::custom(format!("field `display.backend`: {e}"))),
    }
}

fn capture_formats<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PixelFormat>, D::Error> {
    let formats = Vec::<String>::deserialize(d)?;
    if formats.is_empty() {
        return Err(D::Error::custom(
            "field `capture.formats` is empty: name at least one pixel format",
        ));
    }
    formats
        .iter()
        .map(|format| format.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| D::Error::custom(format!("field `capture.formats`: {e}")))
}

fn model_prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let prefixes = Vec::<String>::deserialize(d)?;
    if prefixes.iter().any(|p| p.trim().is_empty()) {
        return Err(D::Error::custom(
            "field `model_prefixes` has an empty prefix, which every board's model starts with",
        ));
    }
    Ok(prefixes)
}

fn keys<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    /// One command's keys, checked one by one where they are written.
    struct Keys(Vec<String>);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let keys = Vec::<String>::deserialize(d)?;
            for key in &keys {
                KeyMap::check_key(key)
                    .map_err(|e| D::Error::custom(format!("field `input.keys`: {e}")))?;
            }
            Ok(Keys(keys))
        }
    }
    let keys: BTreeMap<String, Vec<String>> = BTreeMap::<String, Keys>::deserialize(d)?
        .into_iter()
        .map(|(command, Keys(keys))| (command, keys))
        .collect();
    KeyMap::from_bindings(keys.iter().map(|(c, k)| (c.as_str(), k.as_slice())))
        .map_err(|e| D::Error::custom(format!("field `input.keys`: {e}")))?;
    Ok(keys)
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
        // Only the development PC plays the demo clips without a grabber;
        // a unit without its grabber fails.
        for name in ["rpi4", "rpi5", "rk3588", "rpi-zero2", "x86_64-dev"] {
            let profile = BoardProfile::named(&boards(), name).unwrap();
            let expected = if name == "x86_64-dev" {
                WhenAbsent::Demo
            } else {
                WhenAbsent::Fail
            };
            assert_eq!(profile.capture.when_absent, expected, "{name}");
        }
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
        let absent = good.replace("[capture]", "[capture]\nwhen_absent = \"ignore\"");
        std::fs::write(&path, absent).unwrap();
        let err = BoardProfile::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("when_absent") && err.contains("fail") && err.contains("demo"),
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

    /// `rpi4.toml` with `from` replaced by `to`, loaded from a temporary
    /// folder: the error, and the line number of the line of the changed
    /// profile that starts with `bad`.
    fn load_changed(from: &str, to: &str, bad: &str) -> (String, usize) {
        let good = std::fs::read_to_string(boards().join("rpi4.toml")).unwrap();
        assert!(good.contains(from), "rpi4.toml has no `{from}`");
        let changed = good.replacen(from, to, 1);
        let line = changed.lines().position(|l| l.starts_with(bad)).unwrap() + 1;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, changed).unwrap();
        match BoardProfile::load(&path) {
            Ok(_) => panic!("`{to}` was accepted"),
            Err(e) => (e.to_string(), line),
        }
    }

    #[test]
    fn every_number_and_list_past_what_a_unit_can_use_is_refused_with_its_line() {
        let formats = r#"formats = ["GREY", "YUYV", "MJPG", "NV12", "RGB3"]"#;
        let cases = [
            ("threads = 4", "threads = 100000", "threads", "1 to 64"),
            ("threads = 4", "threads = 65", "threads", "1 to 64"),
            ("threads = 4", "threads = 0", "threads", "1 to 64"),
            (
                "size = [800, 480]",
                "size = [100000, 100000]",
                "display.size",
                "16 to 4096",
            ),
            (
                "size = [800, 480]",
                "size = [800, 8]",
                "display.size",
                "16 to 4096",
            ),
            (
                "size = [800, 480]",
                "size = [800, 480, 3]",
                "display.size",
                "has 3 numbers",
            ),
            (
                "size = [800, 480]",
                "size = [800]",
                "display.size",
                "has 1 numbers",
            ),
            ("rotation = 0", "rotation = 45", "display.rotation", "270"),
            (
                "rotation = 0",
                "rotation = 65626",
                "display.rotation",
                "270",
            ),
            (
                "[capture]",
                "[capture]\nsize = [4097, 480]",
                "capture.size",
                "16 to 4096",
            ),
            (
                "[capture]",
                "[capture]\nsize = [640, 480, 2]",
                "capture.size",
                "has 3",
            ),
            ("[capture]", "[capture]\nfps = 0", "capture.fps", "1 to 240"),
            (
                "[capture]",
                "[capture]\nfps = 100000",
                "capture.fps",
                "1 to 240",
            ),
            (formats, "formats = []", "capture.formats", "empty"),
            (
                "freeze = [\"KEY_PAUSE\"]",
                "freeze = [\"60000\"]",
                "input.keys",
                "1 to 767",
            ),
            (
                "freeze = [\"KEY_PAUSE\"]",
                "freeze = [\"0\", \"00\"]",
                "input.keys",
                "00",
            ),
            (
                "model_prefixes = [",
                "model_prefixes = [\"\", ",
                "model_prefixes",
                "empty",
            ),
            (
                "[paths]",
                "[update]\nhealth_frames = 0\nhealth_timeout_s = 120\nmax_starts = 3\n[paths]",
                "update.health_frames",
                "1 to 10000",
            ),
            (
                "[paths]",
                "[update]\nhealth_frames = 100000000\nhealth_timeout_s = 120\nmax_starts = 3\n[paths]",
                "update.health_frames",
                "1 to 10000",
            ),
            (
                "[paths]",
                "[update]\nhealth_frames = 100\nhealth_timeout_s = 0\nmax_starts = 3\n[paths]",
                "update.health_timeout_s",
                "1 to 3600",
            ),
            (
                "[paths]",
                "[update]\nhealth_frames = 100\nhealth_timeout_s = 99999999\nmax_starts = 3\n[paths]",
                "update.health_timeout_s",
                "1 to 3600",
            ),
            (
                "[paths]",
                "[update]\nhealth_frames = 100\nhealth_timeout_s = 120\nmax_starts = 0\n[paths]",
                "update.max_starts",
                "1 to 10",
            ),
            (
                "[paths]",
                "[update]\nhealth_frames = 100\nhealth_timeout_s = 120\nmax_starts = 4000000000\n[paths]",
                "update.max_starts",
                "1 to 10",
            ),
        ];
        for (from, to, field, rule) in cases {
            // The bad line is the one that sets the field.
            let key = field.rsplit('.').next().unwrap();
            let key = if key == "keys" { "freeze" } else { key };
            let bad = to.lines().find(|l| l.starts_with(&format!("{key} = ")));
            let (err, line) = load_changed(from, to, bad.unwrap());
            assert!(
                err.contains("bad.toml") && err.contains(&format!("line {line} ")),
                "`{to}`: {err}"
            );
            assert!(
                err.contains(&format!("`{field}`")) && err.contains(rule),
                "`{to}`: {err}"
            );
        }
    }

    #[test]
    fn the_bounds_of_a_profile_admit_every_shipped_board_and_the_edges() {
        let (err, _) = load_changed("threads = 4", "threads = 64\nthreds = 1", "threds");
        assert!(err.contains("threds"), "64 threads pass: {err}");
        let (err, _) = load_changed("size = [800, 480]", "size = [4096, 16]\nsise = 1", "sise");
        assert!(err.contains("sise"), "4096x16 passes: {err}");
    }

    #[test]
    fn a_profile_that_is_not_a_small_regular_file_is_not_read() {
        let err = BoardProfile::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/dev/zero") && err.contains("not a regular file"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        std::fs::write(&path, vec![b'#'; MAX_PROFILE_BYTES as usize + 1]).unwrap();
        let err = BoardProfile::load(&path).unwrap_err().to_string();
        assert!(err.contains("big.toml") && err.contains("64 KiB"), "{err}");
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
