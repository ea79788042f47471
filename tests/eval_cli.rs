//! `pleura eval` and `pleura score` from the command line, as a user runs them.

mod common;

use std::path::Path;

fn pleura(args: &[&str]) -> std::process::Output {
    common::pleura().args(args).output().expect("pleura runs")
}

/// A tiny BLUES-layout dataset: one patient, two real clips and one corrupt one.
fn tiny_blues(dir: &Path) {
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::copy(
        common::repo("tests/demo/healthy-score0.mp4"),
        videos.join("patient_1_L1.mp4"),
    )
    .unwrap();
    std::fs::copy(
        common::repo("tests/demo/covid-score2.mp4"),
        videos.join("patient_1_L2.mp4"),
    )
    .unwrap();
    std::fs::write(videos.join("patient_1_L3.mp4"), b"not a video").unwrap();
    std::fs::write(
        dir.join("severity.csv"),
        "video_file,Severity Score,A-lines,B-lines,comments\n\
         patient_1_L1,0.0,yes,no ,\"regular pleura, A-lines\"\n\
         patient_1_L2,2.0,no,yes,\"broken pleura line, small consolidated areas, B-lines\"\n\
         patient_1_L3,1.0,no,yes,B-lines\n",
    )
    .unwrap();
}

#[test]
fn eval_reports_every_metric_and_skips_the_corrupt_clip_by_name() {
    let dir = tempfile::tempdir().unwrap();
    tiny_blues(dir.path());
    let json = dir.path().join("m.json");
    let out = pleura(&[
        "eval",
        "--dataset",
        "blues",
        dir.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--max-frames",
        "8",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("patient_1_L3"),
        "the corrupt clip is named: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["clips_scored"], 2);
    assert_eq!(report["clips_skipped"], 1);
    for key in ["accuracy", "macro_f1", "weighted_f1", "qwk", "mae"] {
        assert!(report["video"][key].is_number(), "video.{key}");
    }
    let confusion = report["video"]["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 4);
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 2);
    // The only patient lost a zone, so no complete exam can be summed.
    assert_eq!(report["exam"]["patients"], 0);
    assert!(report["exam"]["mae"].is_number());
    assert!(
        report["bline"]["auc"].is_number(),
        "one clip with and one without B-lines"
    );
}

#[test]
fn score_on_a_corrupt_clip_fails_cleanly_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken-clip.mp4");
    std::fs::write(&bad, [0u8; 4096]).unwrap();
    let out = pleura(&["score", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("broken-clip.mp4") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn score_with_a_missing_model_names_the_model_file() {
    let out = pleura(&[
        "score",
        "tests/demo/healthy-score0.mp4",
        "--model",
        "models/nope.gguf",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("models/nope.gguf") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn score_prints_a_score_for_a_demo_clip() {
    let out = pleura(&["score", "tests/demo/covid-score2.mp4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("score"))
        .expect("a score line");
    let score: u8 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(score <= 3);
}
