//! Paths shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A file inside the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The shipped model.
pub fn shipped_model() -> PathBuf {
    repo("models/lusnet-v2.gguf")
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

/// The `pleura` binary, run from the repository root.
pub fn pleura() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pleura"));
    command.current_dir(repo(""));
    command
}

/// Runs `command` and checks that it succeeded, showing its stderr if not.
pub fn succeed(command: &mut std::process::Command) -> std::process::Output {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
