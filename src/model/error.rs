//! Why a model could not be loaded, imported or run.

use super::{ARCHITECTURE, LUSNET_VERSION};
use std::path::PathBuf;

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
