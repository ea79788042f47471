//! The soak (`scripts/soak`): plays FRAMES frames through one `pleura run`
//! as a unit runs it (the int8 path, the PNG display drawing every 100th
//! frame, the exam journal on, with a scripted clinician starting exams,
//! recording zones and finishing), samples the process's resident memory,
//! open file descriptors and threads every second from its first scored
//! frame on, and reads every frame's
//! capture-to-record latency from the frame log.
//!
//! It reports, as JSON (also written to `WORK_DIR/results.json`, beside
//! every sample in `samples.tsv`):
//! * memory growth from the first 10 % of the samples to the last 10 %
//!   (means; passes at ≤ 1 MiB), and the file descriptors and threads at
//!   the start and end (passes when flat);
//! * the p99 latency of each block of 100 000 frames (passes when no block
//!   is more than twice the first's, plus 1 ms);
//! * errors: a failed run, a frame not scored, a WARN or ERROR log line.
//!
//! Usage: `soak PLEURA_BINARY WORK_DIR FRAMES`. Exits non-zero on a fail.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "shared/process.rs"]
mod process;

/// Frames in one latency block.
const BLOCK: usize = 100_000;
/// The most resident memory may grow, KiB.
const GROWTH_LIMIT_KIB: f64 = 1024.0;

/// One sample of the process.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Sample {
    second: u64,
    rss_kib: u64,
    fds: usize,
    threads: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: soak PLEURA_BINARY WORK_DIR FRAMES");
        std::process::exit(2);
    }
    let (pleura, work) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let frames: usize = args[3].parse().expect("FRAMES is a number");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work folder");
    let frame_log = work.join("frames.jsonl");
    let stderr = std::fs::File::create(work.join("pleura.log")).expect("pleura.log");
    let started = Instant::now();
    let mut child = Command::new(&pleura)
        .args(["run", "--no-pace", "--precision", "int8", "--every", "100"])
        .arg("--source")
        .arg(format!("phantom:score=1,frames={frames}"))
        .arg(format!("--display=png:{}", work.join("screens").display()))
        .args(["--exam", "blue", "--journal"])
        .arg(work.join("exam.jsonl"))
        .arg("--log")
        .arg(&frame_log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("pleura run starts");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    // The clinician: an exam every two minutes, a zone every ten seconds.
    let mut keys = child.stdin.take().expect("stdin");
    let clinician_done = Arc::clone(&done);
    let clinician = std::thread::spawn(move || {
        let mut tick = 0u64;
        while !clinician_done.load(Ordering::Relaxed) {
            let key = match tick % 120 {
                0 => "s",
                119 => "x",
                t if t % 10 == 5 => "r",
                t if t % 10 == 6 => "n",
                _ => "",
            };
            if !key.is_empty() && writeln!(keys, "{key}").is_err() {
                break;
            }
            tick += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler_done = Arc::clone(&done);
    let sampled = Arc::clone(&samples);
    let scoring = frame_log.clone();
    let sampler = std::thread::spawn(move || {
        while !sampler_done.load(Ordering::Relaxed) {
            // From the first scored frame on: before it, the process is
            // still loading its model and opening its files.
            let started_scoring = std::fs::metadata(&scoring).is_ok_and(|m| m.len() > 0);
            if started_scoring && let Some(sample) = sample(pid, started) {
                sampled.lock().expect("samples").push(sample);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut summary = String::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            summary.push_str(&line);
            summary.push('\n');
        }
    }
    let status = child.wait().expect("pleura run ends");
    done.store(true, Ordering::Relaxed);
    let _ = clinician.join();
    let _ = sampler.join();
    let seconds = started.elapsed().as_secs_f64();
    let samples = samples.lock().expect("samples").clone();
    let report = report(
        &work,
        &frame_log,
        frames,
        &samples,
        status.success(),
        seconds,
    );
    let json = serde_json::to_string_pretty(&report).expect("report");
    println!("{json}");
    std::fs::write(work.join("results.json"), &json).expect("results.json");
    std::fs::write(work.join("run.txt"), summary).expect("run.txt");
    let samples_tsv: String = std::iter::once("second\trss_kib\tfds\tthreads\n".to_string())
        .chain(
            samples
                .iter()
                .map(|s| format!("{}\t{}\t{}\t{}\n", s.second, s.rss_kib, s.fds, s.threads)),
        )
        .collect();
    std::fs::write(work.join("samples.tsv"), samples_tsv).expect("samples.tsv");
    let passed = report["passed"].as_bool().unwrap_or(false);
    std::process::exit(i32::from(!passed));
}

/// The process's memory, descriptors and threads now.
fn sample(pid: u32, started: Instant) -> Option<Sample> {
    let pid = pid.to_string();
    let [rss_kib, threads] = process::status(&pid, ["VmRSS:", "Threads:"])?;
    Some(Sample {
        second: started.elapsed().as_secs(),
        rss_kib,
        fds: process::open_fds(&pid)?,
        threads: threads as usize,
    })
}

fn report(
    work: &Path,
    frame_log: &Path,
    frames: usize,
    samples: &[Sample],
    run_ok: bool,
    seconds: f64,
) -> serde_json::Value {
    // Latency per block, from the frame log, one line at a time.
    let mut blocks: Vec<f64> = Vec::new();
    let mut block: Vec<f64> = Vec::with_capacity(BLOCK);
    let mut scored = 0usize;
    let p99 = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[(values.len() * 99 / 100).min(values.len() - 1)]
    };
    if let Ok(file) = std::fs::File::open(frame_log) {
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            let Some(latency) = line
                .split("\"latency_ms\":")
                .nth(1)
                .and_then(|rest| rest.split([',', '}']).next())
                .and_then(|v| v.parse::<f64>().ok())
            else {
                continue;
            };
            scored += 1;
            block.push(latency);
            if block.len() == BLOCK {
                blocks.push(p99(&mut block));
                block.clear();
            }
        }
    }
    if !block.is_empty() {
        blocks.push(p99(&mut block));
    }
    let tenth = (samples.len() / 10).max(1);
    let mean = |s: &[Sample]| s.iter().map(|s| s.rss_kib as f64).sum::<f64>() / s.len() as f64;
    let (first, last) = (
        &samples[..tenth.min(samples.len())],
        &samples[samples.len().saturating_sub(tenth)..],
    );
    let growth_kib = if samples.is_empty() {
        f64::NAN
    } else {
        mean(last) - mean(first)
    };
    let flat = |get: fn(&Sample) -> usize| {
        let (a, b) = (first.first().map(get), last.last().map(get));
        serde_json::json!({ "start": a, "end": b, "max": samples.iter().map(get).max() })
    };
    let fds_flat = first.first().map(|s| s.fds) == last.last().map(|s| s.fds);
    let latency_flat = blocks
        .first()
        .is_some_and(|&first| blocks.iter().all(|&b| b <= 2.0 * first + 1.0));
    let log = std::fs::read_to_string(work.join("pleura.log")).unwrap_or_default();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .take(20)
        .collect();
    let passed = run_ok
        && scored == frames
        && growth_kib <= GROWTH_LIMIT_KIB
        && fds_flat
        && latency_flat
        && errors.is_empty();
    serde_json::json!({
        "frames": frames,
        "scored": scored,
        "seconds": seconds,
        "samples": samples.len(),
        "rss_kib": {
            "first_10_percent_mean": mean(first),
            "last_10_percent_mean": mean(last),
            "growth": growth_kib,
            "max": samples.iter().map(|s| s.rss_kib).max(),
        },
        "fds": flat(|s| s.fds),
        "threads": flat(|s| s.threads),
        "p99_latency_ms_per_100k_frames": blocks,
        "run_succeeded": run_ok,
        "errors": errors,
        "passed": passed,
    })
}
