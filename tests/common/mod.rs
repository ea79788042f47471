//! Paths shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A file inside the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The shipped model.
pub fn shipped_model() -> PathBuf {
    repo("models/lusnet-v3.gguf")
}

/// The development data beside the checkout (`../shared/data`), or in the
/// folder `PLEURA_DEV_DATA` names, when it is there. CI also runs every
/// test file that names this function, [`development_clips`] or
/// [`agreement_clips`] with `PLEURA_DEV_DATA` set to an empty folder, as a
/// new user without the data runs it: reach the data through them.
pub fn dev_data(name: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PLEURA_DEV_DATA")
        .map_or_else(|| repo("..").join("shared").join("data"), PathBuf::from);
    let dir = root.join(name);
    dir.is_dir().then_some(dir)
}

/// The lowest agreement rate over `n` items that is still consistent with
/// a true rate of `claimed`: the rate with the most disagreements `k` such
/// that `k` or more happen with probability at least 0.001 when each item
/// disagrees with probability `1 - claimed` (binomial). On a handful of
/// demo frames a single near-tie is 2.5 %; this keeps a bound that small
/// data can honestly check.
pub fn plausible_rate(claimed: f64, n: usize) -> f64 {
    let p = 1.0 - claimed;
    // P(X >= k) = 1 - sum_{i<k} C(n, i) p^i (1-p)^(n-i)
    let mut term = (1.0 - p).powi(n as i32);
    let mut below = 0.0;
    let mut k = 0;
    while k < n {
        below += term;
        if 1.0 - below < 0.001 {
            break;
        }
        term *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
        k += 1;
    }
    1.0 - k as f64 / n as f64
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

/// How two inference paths of one model agree over clips
/// ([`compare_paths`]).
#[derive(Debug, Default)]
pub struct Agreement {
    /// Clips compared, and those whose clip scores are the same.
    pub clips: usize,
    pub clips_agreeing: usize,
    /// Frames compared, and those whose frame scores are the same.
    pub frames: usize,
    pub frames_agreeing: usize,
    /// Segmentation cells compared.
    pub cells: usize,
    /// Per class: cells that both paths give it, and that either does.
    pub both: Vec<usize>,
    pub either: Vec<usize>,
}

impl Agreement {
    /// The counts of `self` and `other` together.
    pub fn merge(mut self, other: Self) -> Self {
        self.clips += other.clips;
        self.clips_agreeing += other.clips_agreeing;
        self.frames += other.frames;
        self.frames_agreeing += other.frames_agreeing;
        self.cells += other.cells;
        for (sum, n) in self.both.iter_mut().zip(&other.both) {
            *sum += n;
        }
        for (sum, n) in self.either.iter_mut().zip(&other.either) {
            *sum += n;
        }
        self
    }

    /// Fraction of clips with the same clip score.
    pub fn clip_rate(&self) -> f64 {
        self.clips_agreeing as f64 / self.clips as f64
    }

    /// Fraction of frames with the same score.
    pub fn frame_rate(&self) -> f64 {
        self.frames_agreeing as f64 / self.frames as f64
    }

    /// Fraction of segmentation cells with the same class.
    pub fn cell_rate(&self) -> f64 {
        self.both.iter().sum::<usize>() as f64 / self.cells as f64
    }

    /// Each class's mask IoU between the two paths (1 for a class neither gives).
    pub fn iou(&self) -> Vec<f64> {
        self.both
            .iter()
            .zip(&self.either)
            .map(|(&b, &e)| if e == 0 { 1.0 } else { b as f64 / e as f64 })
            .collect()
    }
}

/// Runs `frames_per_clip` evenly spaced frames of each clip through both
/// networks and tallies where they agree.
pub fn compare_paths(
    a: &pleura::model::LusNet,
    b: &pleura::model::LusNet,
    clips: &[PathBuf],
    frames_per_clip: usize,
) -> Agreement {
    let classes = a.meta().seg_classes.len();
    let empty = || Agreement {
        both: vec![0; classes],
        either: vec![0; classes],
        ..Agreement::default()
    };
    let per_clip = map_clips(clips, |clip| {
        let mut agreement = empty();
        let meta = a.meta();
        let prepared = pleura::eval::prepare_clip(
            clip,
            meta.input_size,
            Some(frames_per_clip),
            meta.history_step,
        )
        .unwrap();
        let predict = |net| pleura::eval::predict_clip(net, &prepared).unwrap();
        let (pa, pb) = (predict(a), predict(b));
        for (x, y) in pa.iter().zip(&pb) {
            agreement.frames += 1;
            agreement.frames_agreeing += usize::from(x.score() == y.score());
            agreement.cells += x.seg_labels.len();
            for (&p, &q) in x.seg_labels.iter().zip(&y.seg_labels) {
                agreement.either[p as usize] += 1;
                if p == q {
                    agreement.both[p as usize] += 1;
                } else {
                    agreement.either[q as usize] += 1;
                }
            }
        }
        let (ca, cb) = (
            pleura::scoring::clip_score(&pa).unwrap(),
            pleura::scoring::clip_score(&pb).unwrap(),
        );
        agreement.clips += 1;
        agreement.clips_agreeing += usize::from(ca.score == cb.score);
        agreement
    });
    per_clip.into_iter().fold(empty(), Agreement::merge)
}

/// `work` done on every clip, two clips at a time (decoding a clip takes
/// one core; the test machines have two), the results in the clips' order.
/// A panic in `work` fails the calling test with its message.
pub fn map_clips<T: Send>(
    clips: &[PathBuf],
    work: impl Fn(&std::path::Path) -> T + Sync,
) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new((0..clips.len()).map(|_| None).collect::<Vec<_>>());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(clip) = clips.get(i) else { break };
                    let result = work(clip);
                    results.lock().unwrap()[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|result| result.expect("every clip was done"))
        .collect()
}

/// A board profile for the tests: one x86-64 core and one thread, with
/// the model, screen, grabber and folders given ([`TestBoard::toml`]).
pub struct TestBoard<'a> {
    /// The profile's name.
    pub name: &'a str,
    /// The model file, as the profile writes it.
    pub model: &'a str,
    /// The display backend (`none`, `png:DIR`…).
    pub display: &'a str,
    /// The grabber's device and its pixel format.
    pub grabber: (&'a str, &'a str),
    /// The data folder and the update slots' folder.
    pub folders: (&'a std::path::Path, &'a std::path::Path),
    /// `[update]`: the self-test's frames and time limit, and the trial's
    /// starts; the defaults when `None`.
    pub update: Option<(u64, u64, u32)>,
}

impl TestBoard<'_> {
    /// The profile as `boards/*.toml` holds it.
    pub fn toml(&self) -> String {
        let (device, format) = self.grabber;
        let (data, slots) = self.folders;
        let mut text = format!(
            r#"name = "{name}"
target = "x86_64-unknown-linux-gnu"
threads = 1
model = "{model}"

[cpu]
cores = ["x86-64"]
features = []

[display]
backend = "{display}"
size = [480, 320]

[capture]
device = "{device}"
formats = ["{format}"]

[paths]
data = "{data}"
slots = "{slots}"
"#,
            name = self.name,
            model = self.model,
            display = self.display,
            data = data.display(),
            slots = slots.display(),
        );
        if let Some((frames, timeout_s, starts)) = self.update {
            text += &format!(
                "\n[update]\nhealth_frames = {frames}\nhealth_timeout_s = {timeout_s}\nmax_starts = {starts}\n"
            );
        }
        text
    }
}

/// Every development clip (BLUES and POCUS, every Nth under emulation)
/// when `../shared/data` is present, and the demo clips always.
pub fn development_clips() -> Vec<PathBuf> {
    let mut clips: Vec<PathBuf> = ["healthy-score0", "covid-score1", "covid-score2"]
        .iter()
        .chain(&["viral-linear-score2", "h1n1-whitelung"])
        .map(|c| repo(&format!("tests/demo/{c}.mp4")))
        .collect();
    let mut dev = Vec::new();
    for dir in [
        dev_data("blues-dev").map(|d| d.join("videos")),
        dev_data("pocus").map(|d| d.join("videos/convex")),
        dev_data("pocus").map(|d| d.join("videos/linear")),
    ]
    .into_iter()
    .flatten()
    {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        dev.extend(found);
    }
    let stride = std::env::var("PLEURA_AGREEMENT_STRIDE").map_or(1, |n| n.parse().unwrap_or(1));
    clips.extend(dev.into_iter().step_by(stride));
    clips
}
