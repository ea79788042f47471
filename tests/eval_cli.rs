//! `pleura eval` and `pleura score` from the command line, as a user runs them.

mod common;

use std::path::{Path, PathBuf};

fn pleura(args: &[&str]) -> std::process::Output {
    common::pleura().args(args).output().expect("pleura runs")
}

/// `pleura eval --dataset blues DIR --json DIR/m.json --max-frames N`: the
/// process's output, and the report it wrote (`Null` when it wrote none).
fn eval_blues(dir: &Path, max_frames: usize) -> (std::process::Output, serde_json::Value) {
    let json = dir.join("m.json");
    let out = pleura(&[
        "eval",
        "--dataset",
        "blues",
        dir.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--max-frames",
        &max_frames.to_string(),
    ]);
    let report = std::fs::read(&json)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    (out, report)
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
    let (out, report) = eval_blues(dir.path(), 8);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("patient_1_L3"),
        "the corrupt clip is named: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
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

/// Two patients; patient 1's zone L1 was recorded twice (`patient_1_L1_2`).
fn blues_with_a_repeat(dir: &Path) {
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    for (demo, name) in [
        ("healthy-score0.mp4", "patient_1_L1"),
        ("covid-score2.mp4", "patient_1_L1_2"),
        ("covid-score1.mp4", "patient_1_L2"),
        ("viral-linear-score2.mp4", "patient_2_R1"),
    ] {
        std::fs::copy(
            common::repo(&format!("tests/demo/{demo}")),
            videos.join(format!("{name}.mp4")),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("severity.csv"),
        "video_file,Severity Score,A-lines,B-lines,comments\n\
         patient_1_L1,0.0,yes,no ,pleura line intact\n\
         patient_1_L1_2,2.0,no,yes,\"broken pleura line, small consolidated areas\"\n\
         patient_1_L2,1.0,no,Yes,\n\
         patient_2_R1,2.0,no ,no,white lung?\n",
    )
    .unwrap();
}

#[test]
fn a_second_recording_of_a_zone_counts_toward_one_exam_per_patient() {
    let dir = tempfile::tempdir().unwrap();
    blues_with_a_repeat(dir.path());
    let (out, report) = eval_blues(dir.path(), 4);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["clips_scored"], 4);
    assert_eq!(report["exam"]["patients"], 2, "two people, two exams");
    // The exam total takes one score per zone, the worst of its recordings,
    // for the experts and for the model alike.
    let mut zones: std::collections::BTreeMap<(String, String), (u64, u64)> = Default::default();
    for clip in report["clips"].as_array().unwrap() {
        let key = (
            clip["group"].as_str().unwrap().to_string(),
            clip["zone"].as_str().unwrap().to_string(),
        );
        let zone = zones.entry(key).or_default();
        zone.0 = zone.0.max(clip["truth"].as_u64().unwrap());
        zone.1 = zone.1.max(clip["predicted"].as_u64().unwrap());
    }
    assert_eq!(zones.len(), 3, "patient_1 L1 and L2, patient_2 R1");
    let mut totals: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for ((group, _), (truth, predicted)) in &zones {
        let total = totals.entry(group).or_default();
        total.0 += *truth as i64;
        total.1 += *predicted as i64;
    }
    assert_eq!(
        totals["patient_1"].0,
        2 + 1,
        "worst of L1's 0 and 2, plus L2's 1"
    );
    let expected: f64 = totals
        .values()
        .map(|(t, p)| (t - p).abs() as f64)
        .sum::<f64>()
        / 2.0;
    let mae = report["exam"]["mae"].as_f64().unwrap();
    assert!(
        (mae - expected).abs() < 1e-9,
        "exam MAE {mae}, expected {expected}"
    );
}

#[test]
fn eval_reports_finding_aucs_and_the_false_tint_on_b_line_negative_clips() {
    let dir = tempfile::tempdir().unwrap();
    blues_with_a_repeat(dir.path());
    let (out, report) = eval_blues(dir.path(), 4);
    assert!(out.status.success());
    // Labels: the columns for B-lines (stray spaces and case tolerated), the
    // comments for the rest; a missing or hedged comment is unknown.
    let findings: Vec<&serde_json::Value> = report["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["findings"])
        .collect();
    let labels = |name: &str| -> Vec<serde_json::Value> {
        findings.iter().map(|f| f[name].clone()).collect()
    };
    use serde_json::Value::{Bool, Null};
    assert_eq!(
        labels("b_lines"),
        [Bool(false), Bool(true), Bool(true), Bool(false)]
    );
    assert_eq!(labels("consolidation"), [Null, Bool(true), Null, Null]);
    assert_eq!(
        labels("pleura_abnormal"),
        [Bool(false), Bool(true), Null, Null]
    );
    assert_eq!(labels("white_lung"), [Null, Null, Null, Null]);
    // B-lines: two clips each way, so an AUC exists.
    assert_eq!(report["findings"]["b_lines"]["clips"], 4);
    assert_eq!(report["findings"]["b_lines"]["positive"], 2);
    let auc = report["findings"]["b_lines"]["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
    assert_eq!(report["bline"]["auc"], report["findings"]["b_lines"]["auc"]);
    // Consolidation: one labelled clip, a "yes": no AUC, and it says so.
    assert_eq!(report["findings"]["consolidation"]["clips"], 1);
    assert!(report["findings"]["consolidation"]["auc"].is_null());
    // False tint: the B-line area on the two B-line-negative clips.
    let negative: Vec<f64> = report["clips"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["findings"]["b_lines"] == Bool(false))
        .map(|c| c["bline_fraction"].as_f64().unwrap())
        .collect();
    let (lo, hi) = (negative[0].min(negative[1]), negative[0].max(negative[1]));
    let median = report["bline"]["negative_fraction_median"]
        .as_f64()
        .unwrap();
    let p90 = report["bline"]["negative_fraction_p90"].as_f64().unwrap();
    assert!(
        (median - (lo + hi) / 2.0).abs() < 1e-6,
        "{median} vs {lo}, {hi}"
    );
    assert!(
        (p90 - (lo + 0.9 * (hi - lo))).abs() < 1e-6,
        "{p90} vs {lo}, {hi}"
    );
}

/// A POCUS-layout folder holding the demo clips `clips` as (file, score;
/// empty for none).
fn pocus_folder(clips: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("videos")).unwrap();
    let mut labels = String::from("file,probe,severity\n");
    for (name, score) in clips {
        let to = dir.path().join("videos").join(name);
        std::fs::copy(common::repo(&format!("tests/demo/{name}")), to).unwrap();
        labels += &format!("videos/{name},convex,{score}\n");
    }
    std::fs::write(dir.path().join("labels.csv"), labels).unwrap();
    dir
}

/// `pleura dataset export` of the POCUS-layout `dir` into `dir/name`, with
/// `max_frames` and `extra` flags; returns the output folder and its index.
fn export(
    dir: &Path,
    name: &str,
    max_frames: &str,
    extra: &[&str],
) -> (PathBuf, serde_json::Value) {
    let out = dir.join(name);
    let mut args = vec![
        "dataset",
        "export",
        "--dataset",
        "pocus",
        dir.to_str().unwrap(),
    ];
    args.extend(["--out", out.to_str().unwrap(), "--max-frames", max_frames]);
    args.extend_from_slice(extra);
    let output = pleura(&args);
    assert!(output.status.success(), "{output:?}");
    let index = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    (out, index)
}

#[test]
fn export_writes_the_rated_clips_and_with_unrated_every_clip() {
    // One rated clip, one that nobody scored.
    let dir = pocus_folder(&[("healthy-score0.mp4", "0"), ("h1n1-whitelung.mp4", "")]);
    let clips = |name: &str, extra: &[&str]| {
        let (_, index) = export(dir.path(), name, "4", extra);
        index["clips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["score"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        clips("rated", &[]),
        [("healthy-score0".to_string(), serde_json::json!(0))],
        "the training set holds rated clips only"
    );
    assert_eq!(
        clips("all", &["--unrated"]),
        [
            ("healthy-score0".to_string(), serde_json::json!(0)),
            ("h1n1-whitelung".to_string(), serde_json::Value::Null),
        ],
        "--unrated adds the clip without a score, its score null"
    );
}

#[test]
fn export_with_a_history_step_adds_each_frames_two_earlier_frames() {
    let dir = pocus_folder(&[("healthy-score0.mp4", "0")]);
    let frames_of = |name: &str, extra: &[&str]| {
        let (out, index) = export(dir.path(), name, "6", extra);
        let clip = index["clips"][0].clone();
        let frames = std::fs::read(out.join(clip["file"].as_str().unwrap())).unwrap();
        let history = clip["history"]
            .as_str()
            .map(|file| std::fs::read(out.join(file)).unwrap());
        (frames, history)
    };
    let (plain, none) = frames_of("plain", &[]);
    let (frames, history) = frames_of("history", &["--history-step", "2"]);
    assert!(none.is_none(), "no history unless asked for");
    assert_eq!(frames, plain, "the kept frames do not change");
    let history = history.expect("a history file");
    let side = 128 * 128;
    assert_eq!(history.len(), 2 * frames.len(), "two earlier frames each");
    let first = &frames[..side];
    assert_eq!(
        &history[..2 * side],
        [first, first].concat().as_slice(),
        "the clip's first frame stands in for the frames before it"
    );
    let last = frames.len() / side - 1;
    let (earlier, current) = (&history[(2 * last + 1) * side..], &frames[last * side..]);
    assert_ne!(
        earlier, current,
        "a later frame's history is an earlier picture"
    );
}
