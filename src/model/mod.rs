//! The LusNet model: its description ([`ModelMeta`]), its file format
//! (GGUF, in [`gguf`]), its layers ([`conv`]) and the network ([`lusnet`]).
//!
//! The model knows frames only as normalized square tensors. It never sees
//! a capture device, a clip or a screen.

pub mod arch;
pub mod conv;
pub mod gguf;
pub mod heads;
pub mod import;
pub mod int8;
pub mod int8_lusnet;
pub mod lusnet;

pub use lusnet::{FramePrediction, LusNet, ModelOutput};

use std::path::PathBuf;

/// The only architecture this build can run.
pub const ARCHITECTURE: &str = "lusnet";
/// The newest LusNet layout this build understands.
pub const LUSNET_VERSION: u32 = 1;
/// Number of Soldati score classes (0–3).
pub const SCORE_CLASSES: usize = 4;

/// Environment variable read by candle's quantized thread pool.
const CANDLE_THREADS_VAR: &str = "CANDLE_NUM_THREADS";
/// Environment variable read by candle's f32 products (gemm), and by Pleura
/// for its own split of quantized products.
const THREADS_VAR: &str = "RAYON_NUM_THREADS";

/// Uses `threads` threads for inference (a board profile's choice), unless
/// the user set `RAYON_NUM_THREADS`. Call it before the model's first
/// product and before other threads start.
pub fn set_threads(threads: usize) {
    if std::env::var_os(THREADS_VAR).is_none() {
        // SAFETY: called while the program is single-threaded, before the
        // first product reads the variable.
        unsafe { std::env::set_var(THREADS_VAR, threads.max(1).to_string()) };
    }
}

/// Checks the thread counts a user may set in the environment
/// (`RAYON_NUM_THREADS`, `CANDLE_NUM_THREADS`) against the same bounds as
/// a board profile's `threads` ([`crate::board::THREADS`]): thread pools
/// are sized from them, and 100 000 threads take a unit down. Returns the
/// message for the first one that is not a number in range.
pub fn check_thread_vars() -> Result<(), String> {
    let range = crate::board::THREADS;
    for var in [THREADS_VAR, CANDLE_THREADS_VAR] {
        let Some(value) = std::env::var_os(var) else {
            continue;
        };
        let value = value.to_string_lossy();
        match value.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => {}
            _ => {
                return Err(format!(
                    "{var}={value}: use a number of threads from {} to {}",
                    range.start(),
                    range.end()
                ));
            }
        }
    }
    Ok(())
}

/// Threads for inference: `RAYON_NUM_THREADS`, else every core.
pub fn threads() -> usize {
    std::env::var(THREADS_VAR)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Sets candle's quantized thread pool to one thread unless the user chose
/// otherwise; Pleura parallelizes quantized products itself (see
/// [`conv`]). Call it first thing in `main`, before any other thread starts,
/// and before the first quantized product.
pub fn init_threads() {
    if std::env::var_os(CANDLE_THREADS_VAR).is_none() {
        // SAFETY: called at program start, before any thread exists that
        // could read or write the environment concurrently.
        unsafe { std::env::set_var(CANDLE_THREADS_VAR, "1") };
    }
}

/// How the network's matrix products are computed (`f32`, `q8` or `int8`
/// on the command line and in board profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Precision {
    /// Weights dequantized once to f32; f32 activations and products.
    #[serde(rename = "f32")]
    F32,
    /// Weights kept as stored (Q8_0) and multiplied with candle's `QMatMul`,
    /// which quantizes activations to 8 bits on the fly.
    #[serde(rename = "q8")]
    Quantized,
    /// Pleura's integer convolutions ([`int8`], [`int8_lusnet`]): weights
    /// per output channel in i8, activations in 7 bits scaled per tensor and
    /// frame, i32 sums, with bias and ReLU fused into the conversion back.
    /// The stem (whose input, the normalized frame, is signed) and the two
    /// heads stay f32.
    #[serde(rename = "int8")]
    Int8,
}

impl Precision {
    /// The name the command line and board profiles use.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Quantized => "q8",
            Precision::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "q8" | "q8_0" | "quantized" => Ok(Precision::Quantized),
            "f32" => Ok(Precision::F32),
            "int8" | "i8" => Ok(Precision::Int8),
            other => Err(format!("unknown precision '{other}' (use f32, int8 or q8)")),
        }
    }
}

/// Everything about a model file except its weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    /// Architecture name; must be [`ARCHITECTURE`].
    pub architecture: String,
    /// Layout version of the architecture.
    pub version: u32,
    /// Side of the square input, in pixels.
    pub input_size: usize,
    /// 2.5D input: each frame enters the network with the frames
    /// `2 × history_step` and `history_step` before it as earlier channels
    /// ([`crate::preprocess::FrameHistory`]); 0: the frame alone.
    pub history_step: usize,
    /// Channel widths of the four encoder stages.
    pub widths: [usize; 4],
    /// Input normalization: `(pixel / 255 - norm_mean) / norm_std`.
    pub norm_mean: f32,
    /// See `norm_mean`.
    pub norm_std: f32,
    /// Segmentation class names, index 0 first (index 0 is background).
    pub seg_classes: Vec<String>,
    /// How frame outputs are combined into a clip score.
    pub aggregation: String,
    /// What the weights were trained on.
    pub training_data: String,
    /// Licenses of the training data, which bind the weights.
    pub licenses: String,
    /// Cross-validation metrics, as a JSON document.
    pub cv_metrics: String,
    /// sha256 over the tensors (names, types, shapes and bytes), hex.
    pub tensors_sha256: String,
}

/// Input sides this build's LusNet supports: four stride-2 stages need a
/// multiple of 16, at least 2 cells at the bottleneck, and the model was
/// trained at 128; beyond 512 a frame costs over 16× the trained cost.
pub const INPUT_SIZES: std::ops::RangeInclusive<usize> = 32..=512;

/// Whether `side` is an input side this build's LusNet supports: a
/// multiple of 16 in [`INPUT_SIZES`]. Otherwise, the rule in words.
pub fn check_input_size(side: usize) -> Result<(), String> {
    if INPUT_SIZES.contains(&side) && side.is_multiple_of(16) {
        return Ok(());
    }
    Err(format!(
        "a multiple of 16 from {} to {}",
        INPUT_SIZES.start(),
        INPUT_SIZES.end()
    ))
}
/// Largest `history_step` this build accepts: a third of a second at
/// 25 frames a second reaches back 16 frames.
pub const MAX_HISTORY_STEP: usize = 8;
/// Widest encoder stage this build accepts (LusNet v2 uses 64).
pub const MAX_WIDTH: usize = 1024;
/// Range accepted for `norm_std`: a standard deviation of pixel values in
/// [0, 1] (the trainer measures about 0.2).
pub const NORM_STD_RANGE: std::ops::RangeInclusive<f32> = 0.01..=1.0;
/// The segmentation classes, in order, that the display, the report and
/// the evaluation expect.
pub const SEG_CLASSES: [&str; 3] = ["background", "b_line", "consolidation"];

impl ModelMeta {
    /// Checks every value that sizes a buffer or changes what the network
    /// computes against what this build supports; `path` names the file in
    /// the error, which gives the key, the value found and the rule.
    pub fn check(&self, path: &std::path::Path) -> Result<(), ModelError> {
        let bad = |key: &str, value: String, rule: &str| {
            Err(ModelError::OutOfRange {
                path: path.to_path_buf(),
                key: format!("{ARCHITECTURE}.{key}"),
                value,
                rule: rule.to_string(),
            })
        };
        if let Err(rule) = check_input_size(self.input_size) {
            return bad("input_size", self.input_size.to_string(), &rule);
        }
        if self.history_step > MAX_HISTORY_STEP {
            return bad(
                "history_step",
                self.history_step.to_string(),
                &format!("from 0 (no history) to {MAX_HISTORY_STEP} frames"),
            );
        }
        if self.widths.iter().any(|&w| w == 0 || w > MAX_WIDTH)
            || !(2 * self.widths[3]).is_multiple_of(32)
        {
            return bad(
                "widths",
                format!("{:?}", self.widths),
                &format!("four widths from 1 to {MAX_WIDTH}, the last a multiple of 16"),
            );
        }
        if !(self.norm_mean.is_finite() && (0.0..=1.0).contains(&self.norm_mean)) {
            return bad(
                "norm_mean",
                self.norm_mean.to_string(),
                "a finite mean pixel value from 0 to 1",
            );
        }
        if !(self.norm_std.is_finite() && NORM_STD_RANGE.contains(&self.norm_std)) {
            return bad(
                "norm_std",
                self.norm_std.to_string(),
                &format!(
                    "a finite standard deviation from {} to {}",
                    NORM_STD_RANGE.start(),
                    NORM_STD_RANGE.end()
                ),
            );
        }
        if self.seg_classes != SEG_CLASSES {
            return bad(
                "seg_classes",
                format!("{:?}", self.seg_classes),
                &format!("exactly {SEG_CLASSES:?}"),
            );
        }
        if ![crate::scoring::AGGREGATION, heads::AGGREGATION].contains(&self.aggregation.as_str()) {
            return bad(
                "aggregation",
                self.aggregation.clone(),
                &format!(
                    "'{}' or '{}'",
                    crate::scoring::AGGREGATION,
                    heads::AGGREGATION
                ),
            );
        }
        Ok(())
    }

    /// Channels of the network's input: 3 for a 2.5D model (the frames
    /// `2 × history_step` and `history_step` before, then the frame), else 1.
    pub fn input_channels(&self) -> usize {
        if self.history_step > 0 { 3 } else { 1 }
    }

    /// Bytes of one network input: [`Self::input_channels`] planes of
    /// `input_size²` pixels, oldest first.
    pub fn input_len(&self) -> usize {
        self.input_channels() * self.input_size * self.input_size
    }

    /// Index of a segmentation class by name.
    pub fn seg_class(&self, name: &str) -> Option<usize> {
        self.seg_classes.iter().position(|c| c == name)
    }
}

/// Why a model could not be loaded, imported or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model file does not exist.
    #[error("model file {path}: not found")]
    Missing {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read or written.
    #[error("model file {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// The file is not a readable GGUF or safetensors file (truncated, corrupt).
    #[error("model file {path}: not a valid {format} file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The expected format.
        format: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The file holds another network.
    #[error(
        "model file {path}: architecture is '{found}', this build runs '{ARCHITECTURE}' v{LUSNET_VERSION}"
    )]
    WrongArchitecture {
        /// The file.
        path: PathBuf,
        /// The architecture (and version) it declares.
        found: String,
    },
    /// A metadata key is missing or has the wrong type.
    #[error("model file {path}: metadata '{key}' is missing or invalid")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A metadata value is outside what this build supports.
    #[error(
        "model file {path}: metadata '{key}' is {value}, but must be {rule}; the file is damaged \
         or was not written for this build"
    )]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The value found.
        value: String,
        /// What the value must be.
        rule: String,
    },
    /// A tensor is missing or has the wrong shape or type.
    #[error("model file {path}: tensor '{name}': {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The metadata or tensors do not match their recorded checksum.
    #[error(
        "model file {path}: checksum mismatch (file says {expected}, its metadata and tensors \
         give {found}); the file is damaged"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The checksum in the metadata.
        expected: String,
        /// The checksum of the data.
        found: String,
    },
    /// The input does not fit the model.
    #[error("model input: {0}")]
    Input(String),
    /// The network code broke one of its own rules: a bug in Pleura, not
    /// bad input or a bad file (those are checked before).
    #[error("model invariant broken (a bug in Pleura): {0}")]
    Invariant(String),
    /// A tensor operation failed while running the network.
    #[error("model inference: {}", candle_message(.0))]
    Candle(#[from] candle_core::Error),
}

/// A candle error's message without the backtrace candle attaches to it
/// when `RUST_BACKTRACE` is set: an ordinary error is not a bug.
pub fn candle_message(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        candle_core::Error::WithPath { inner, path } => {
            format!("{}: {}", path.display(), candle_message(inner))
        }
        other => other.to_string(),
    }
}

impl ModelError {
    /// The error for a model file that could not be opened: `Missing` when
    /// it does not exist, else `Io`.
    pub fn opening(path: &std::path::Path, cause: std::io::Error) -> Self {
        match cause.kind() {
            std::io::ErrorKind::NotFound => Self::Missing {
                path: path.to_path_buf(),
            },
            _ => Self::Io {
                path: path.to_path_buf(),
                cause,
            },
        }
    }
}
