//! The kill test (`scripts/killtest`): SIGKILLs `pleura run --exam` at
//! random moments, run after run, on one unit's exam journal, and checks
//! after every kill that
//!
//! 1. the journal opens (`pleura exam JOURNAL` succeeds), and
//! 2. every zone the killed run had declared recorded is in the journal
//!    with the score it declared. A run declares a zone recorded with a
//!    `recorded zone N (...) of exam ROOT: score S` log line, which the
//!    bedside writes once the zone's journal line is fsynced, before the
//!    screen shows it (and a zone cleared to be redone with a `cleared
//!    zone` line: the last word on a zone is what the journal must hold).
//!
//! A scripted clinician presses keys at random while the run lives (start,
//! record, next zone, previous zone, redo, finish), and zones also record by
//! themselves once their score is stable. Kills land anywhere: while the
//! model loads, while the journal replays or is appended to, while a zone's
//! clip is written, while an exam is handed to the outbox.
//!
//! Usage: `killtest PLEURA_BINARY WORK_DIR RUNS SEED`. Prints one line per
//! 100 runs and a JSON summary, which it also writes to
//! `WORK_DIR/results.json`; exits non-zero if any zone was lost or any
//! journal failed to open.

use rand::{RngExt, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared/declared.rs"]
mod declared;

/// The longest a run lives before it is killed.
const LONGEST_RUN: Duration = Duration::from_millis(4000);
/// The keys the scripted clinician presses, with their weights.
const KEYS: [(&str, u32); 6] = [("r", 45), ("n", 30), ("p", 8), ("d", 4), ("s", 8), ("x", 5)];

#[derive(Default, serde::Serialize)]
struct Summary {
    runs: usize,
    /// Runs killed before they scored a frame (the model loading, the
    /// journal replaying, the display opening).
    killed_before_scoring: usize,
    /// Runs that exited on their own before the kill: each is a failure.
    exited_early: usize,
    keys_pressed: usize,
    /// Zones declared recorded, and declared cleared, by the last word of
    /// each run on each zone.
    zones_declared: usize,
    zones_cleared: usize,
    zones_lost: usize,
    journals_unreadable: usize,
    exams_started: usize,
    exams_finished: usize,
    seconds: f64,
    failures: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: killtest PLEURA_BINARY WORK_DIR RUNS SEED");
        std::process::exit(2);
    }
    let pleura = PathBuf::from(&args[1]);
    let work = PathBuf::from(&args[2]);
    let runs: usize = args[3].parse().expect("RUNS is a number");
    let seed: u64 = args[4].parse().expect("SEED is a number");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("logs")).expect("work folder");
    let journal = work.join("unit/exam.jsonl");
    std::fs::create_dir_all(journal.parent().expect("parent")).expect("unit folder");

    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut summary = Summary::default();
    let started = Instant::now();
    for run in 0..runs {
        let log = work.join("logs/run.log");
        let frames = work.join("logs/frames.jsonl");
        let _ = std::fs::remove_file(&frames);
        let mut child = spawn(&pleura, &journal, &log, &frames);
        let kill_at = Duration::from_millis(rng.random_range(0..LONGEST_RUN.as_millis() as u64));
        let began = Instant::now();
        let mut stdin = child.stdin.take();
        let mut exited = false;
        while began.elapsed() < kill_at {
            if child.try_wait().ok().flatten().is_some() {
                exited = true;
                break;
            }
            let pause = Duration::from_millis(rng.random_range(20..250));
            std::thread::sleep(pause.min(kill_at.saturating_sub(began.elapsed())));
            if began.elapsed() >= kill_at {
                break;
            }
            let key = pick_key(&mut rng);
            if let Some(keys) = stdin.as_mut()
                && writeln!(keys, "{key}").is_ok()
            {
                summary.keys_pressed += 1;
            }
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        drop(stdin);
        summary.runs += 1;
        if exited {
            summary.exited_early += 1;
            summary.failures.push(format!(
                "run {run}: pleura exited before the kill; its log: {}",
                tail(&log)
            ));
        }
        if std::fs::metadata(&frames).map_or(true, |m| m.len() == 0) {
            summary.killed_before_scoring += 1;
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        summary.exams_started += text.matches("Start: done").count();
        summary.exams_finished += text.matches("Finish: done").count();
        check(run, &pleura, &journal, &text, &mut summary);
        if (run + 1) % 100 == 0 {
            eprintln!(
                "killtest: {} runs, {} zones declared, {} lost, {} journals unreadable",
                run + 1,
                summary.zones_declared,
                summary.zones_lost,
                summary.journals_unreadable
            );
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_string_pretty(&summary).expect("summary");
    println!("{json}");
    std::fs::write(work.join("results.json"), &json).expect("results.json");
    let failed = summary.zones_lost + summary.journals_unreadable + summary.exited_early;
    std::process::exit(i32::from(failed > 0));
}

/// Starts one run: a long phantom clip in real time, the exam journal, the
/// PNG display every 25th frame, and the bedside's log at info level.
fn spawn(pleura: &Path, journal: &Path, log: &Path, frames: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("run log");
    Command::new(pleura)
        .args(["run", "--source", "phantom:score=1,frames=100000"])
        .args(["--exam", "blue", "--every", "25"])
        .arg(format!(
            "--display=png:{}",
            journal.with_file_name("screens").display()
        ))
        .arg("--journal")
        .arg(journal)
        .arg("--log")
        .arg(frames)
        .env("RUST_LOG", "pleura=info")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("pleura run starts")
}

fn pick_key(rng: &mut rand_pcg::Pcg64) -> &'static str {
    let total: u32 = KEYS.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (key, weight) in KEYS {
        if pick < weight {
            return key;
        }
        pick -= weight;
    }
    KEYS[0].0
}

/// Checks the journal after run `run`, whose log is `log`.
fn check(run: usize, pleura: &Path, journal: &Path, log: &str, summary: &mut Summary) {
    if journal.exists() {
        let opened = Command::new(pleura)
            .arg("exam")
            .arg(journal)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("pleura exam runs");
        // A journal whose exam has not started yet holds no exam: that is
        // not a failure to open.
        let stderr = String::from_utf8_lossy(&opened.stderr);
        if !opened.status.success() && !stderr.contains("holds no exam") {
            summary.journals_unreadable += 1;
            summary
                .failures
                .push(format!("run {run}: pleura exam fails: {}", stderr.trim()));
        }
    }
    let verdict = declared::verify(log, journal);
    summary.zones_declared += verdict.declared;
    summary.zones_cleared += verdict.cleared;
    summary.zones_lost += verdict.lost.len();
    summary.failures.extend(
        verdict
            .lost
            .into_iter()
            .map(|why| format!("run {run}: {why}")),
    );
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
