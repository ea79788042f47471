//! Paths shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A file inside the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The shipped model.
pub fn shipped_model() -> PathBuf {
    repo("models/lusnet-v1.gguf")
}

/// The development data beside the checkout, when it is there.
pub fn dev_data(name: &str) -> Option<PathBuf> {
    let dir = repo("..").join("shared").join("data").join(name);
    dir.is_dir().then_some(dir)
}

/// Candle's quantized pool with one thread, as `pleura` runs it (see
/// `pleura::model::init_threads`); call before loading a model.
pub fn init_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(pleura::model::init_threads);
}
