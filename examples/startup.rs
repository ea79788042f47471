//! How soon Pleura scores (`scripts/bench` runs it): the time from a
//! process's start to its first scored frame, the model load alone, the
//! time from each demo clip's first frame to its first score, and the
//! capture-to-output latency of a demo run played in real time.
//!
//! * `cold_start_ms`: `pleura run` on the first demo clip (int8, no
//!   display) is started, and the clock stops when its frame log holds its
//!   first line, which is written once the first frame is scored: process
//!   start, model load, thread pool, ffmpeg's start and the first frame's
//!   decode, check, crop and inference. The files are in the page cache
//!   (the median of RUNS runs after one unmeasured run).
//! * `model_load_ms`: `LusNet::load` of the shipped GGUF (int8), in this
//!   process, the median of RUNS loads.
//! * `first_output_ms` and `capture_to_output_p99_ms`: one `pleura run
//!   --source demo` played at the clips' own 25 fps; the median over the
//!   clips of each one's `first_score_ms`, and the run's end-to-end p99.
//!
//! Usage: `startup PLEURA_BINARY OUT.json [RUNS]`. Prints the JSON too.

use pleura::model::{LusNet, Precision};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The model the units ship.
const MODEL: &str = "models/lusnet-v3.gguf";
/// The clip cold starts play.
const CLIP: &str = "tests/demo/covid-score1.mp4";
/// The longest a cold start may take before the run counts as failed.
const GIVE_UP: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: startup PLEURA_BINARY OUT.json [RUNS]");
        std::process::exit(2);
    }
    let (pleura, out) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let runs: usize = args
        .get(3)
        .map_or(10, |n| n.parse().expect("RUNS is a number"));
    let work = tempfile::tempdir().expect("a temporary folder");

    cold_start(&pleura, work.path());
    let cold: Vec<f64> = (0..runs)
        .map(|_| cold_start(&pleura, work.path()))
        .collect();
    let loads: Vec<f64> = (0..runs.max(20))
        .map(|_| {
            let started = Instant::now();
            LusNet::load(Path::new(MODEL), Precision::Int8).expect("the shipped model loads");
            ms(started.elapsed())
        })
        .collect();
    let (first_outputs, p99) = paced_demo(&pleura, work.path());

    let results = serde_json::json!({
        "cpu": cpu_model(),
        "cpu_threads_per_core": threads_per_core(),
        "startup": {
            "cold_start_ms": median(&cold),
            "cold_start_runs_ms": cold,
            "model_load_ms": median(&loads),
            "model_loads": loads.len(),
        },
        "latency": {
            "first_output_ms": median(&first_outputs),
            "first_output_per_clip_ms": first_outputs,
            "capture_to_output_p99_ms": p99,
        },
    });
    let text = serde_json::to_string_pretty(&results).expect("JSON");
    std::fs::write(&out, &text).expect("the results file");
    println!("{text}");
}

/// One cold start: milliseconds from spawning `pleura run` to the first
/// line of its frame log.
fn cold_start(pleura: &Path, work: &Path) -> f64 {
    let log = work.join("frames.jsonl");
    let _ = std::fs::remove_file(&log);
    let started = Instant::now();
    let mut child = Command::new(pleura)
        .args([
            "run",
            "--no-pace",
            "--display",
            "none",
            "--precision",
            "int8",
        ])
        .arg("--source")
        .arg(format!("file:{CLIP}"))
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pleura starts");
    let elapsed = loop {
        if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
            break started.elapsed();
        }
        if started.elapsed() > GIVE_UP {
            let _ = child.kill();
            panic!("no frame scored within {GIVE_UP:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    ms(elapsed)
}

/// Each demo clip's first score after its first frame, and the run's
/// capture-to-output p99, played in real time.
fn paced_demo(pleura: &Path, work: &Path) -> (Vec<f64>, f64) {
    let report = work.join("paced.json");
    let status = Command::new(pleura)
        .args([
            "run",
            "--source",
            "demo",
            "--display",
            "none",
            "--precision",
            "int8",
        ])
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .status()
        .expect("pleura runs");
    assert!(status.success(), "the paced demo run failed");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report")).expect("JSON");
    let firsts = report["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .map(|clip| clip["first_score_ms"].as_f64().expect("first_score_ms"))
        .collect();
    let p99 = report["latency"]["end_to_end"]["p99_ms"]
        .as_f64()
        .expect("the end-to-end latency");
    (firsts, p99)
}

/// The CPU's model name, as the kernel reports it.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Logical CPUs on the first CPU's core (2 where two hyperthreads share
/// one core's vector units), from the kernel's topology; 0 if unknown.
fn threads_per_core() -> usize {
    let siblings = "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list";
    std::fs::read_to_string(siblings).map_or(0, |list| {
        list.trim()
            .split(',')
            .map(|part| match part.split_once('-') {
                Some((first, last)) => match (first.parse::<usize>(), last.parse::<usize>()) {
                    (Ok(first), Ok(last)) => last.saturating_sub(first) + 1,
                    _ => 0,
                },
                None => usize::from(part.parse::<usize>().is_ok()),
            })
            .sum()
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
