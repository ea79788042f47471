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

/// The `pleura` binary, run from the repository root (under the test
/// runner, see [`target_program`]).
pub fn pleura() -> std::process::Command {
    let mut command = target_program(env!("CARGO_BIN_EXE_pleura"));
    command.current_dir(repo(""));
    command
}

/// A program built for the target, e.g. `pleura`. When the tests run under
/// an emulator (`scripts/arm-test` runs aarch64 builds under qemu-user,
/// where the kernel cannot exec an aarch64 binary by itself),
/// `PLEURA_TEST_RUNNER` holds the emulator's command line, e.g.
/// `qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu`, and the
/// program runs under it. Host programs (ffmpeg, kill) need none of this.
pub fn target_program(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let runner = std::env::var("PLEURA_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut command = std::process::Command::new(emulator);
            command.args(words).arg(program);
            command
        }
        None => std::process::Command::new(program),
    }
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

/// The clips the agreement tests compare paths on: the BLUES development
/// clips when `../shared/data` is present (every Nth under emulation, N
/// from `PLEURA_AGREEMENT_STRIDE`), else the named demo clips.
pub fn agreement_clips(demo_fallback: &[&str]) -> Vec<PathBuf> {
    match dev_data("blues-dev") {
        Some(dir) => {
            let mut clips: Vec<PathBuf> = std::fs::read_dir(dir.join("videos"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
                .collect();
            clips.sort();
            let stride = std::env::var("PLEURA_AGREEMENT_STRIDE").map_or(1, |n| {
                n.parse().expect("PLEURA_AGREEMENT_STRIDE is a number")
            });
            clips.into_iter().step_by(stride).collect()
        }
        None => demo_fallback
            .iter()
            .map(|c| repo(&format!("tests/demo/{c}")))
            .collect(),
    }
}
