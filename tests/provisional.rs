//! A new clip is scored from its first frame (issue 21): until its sector
//! is locked from the first 32 frames, each frame is cropped to a
//! provisional sector found from the frames so far, and counts in the clip
//! score only if the locked sector agrees with it. The lock, and the clip
//! scores, stay what they were when the first frames waited for the lock
//! (`--wait-for-sector`).

mod common;

use common::pleura;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The run report of `pleura run` on `source`, with `flags`.
fn report(source: &str, flags: &[&str], out: &Path) -> serde_json::Value {
    common::succeed(
        pleura()
            .args(["run", "--source", source, "--display", "none", "--report"])
            .arg(out)
            .args(flags),
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn at_25_fps_each_demo_clip_is_scored_within_100_ms_of_its_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    // Played in real time, as from a grabber.
    let played = report("demo", &[], &dir.path().join("provisional.json"));
    let clips = played["clips"].as_array().unwrap();
    let demo_clips = std::fs::read_dir(common::repo("tests/demo"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "mp4")
        })
        .count();
    assert_eq!(clips.len(), demo_clips, "every demo clip scored: {played}");
    // Under an emulator (scripts/arm-test) a frame takes far longer than on
    // a CPU and cannot keep up with 25 fps (frames, the first among them,
    // may be dropped): there only the provisional scoring is checked.
    let emulated = std::env::var_os("PLEURA_TEST_RUNNER").is_some_and(|r| !r.is_empty());
    for clip in clips {
        let first = clip["first_score_ms"].as_f64().unwrap();
        println!("{}: first score after {first:.1} ms", clip["name"]);
        assert!(clip["provisional_frames"].as_u64().unwrap() > 0);
        let series = clip["series"].as_array().unwrap();
        assert_eq!(series[0]["provisional"], true);
        if !emulated {
            assert!(
                first <= 100.0,
                "{}: first score after {first} ms",
                clip["name"]
            );
            assert_eq!(series[0]["seq"], 0, "the clip's first frame is scored");
        }
    }
    // Waiting for the lock, the first score comes 32 frames (1.28 s) late.
    let waited = report(
        "file:tests/demo/covid-score1.mp4",
        &["--wait-for-sector"],
        &dir.path().join("waited.json"),
    );
    let first = waited["clips"][0]["first_score_ms"].as_f64().unwrap();
    assert!(first >= 1240.0, "waiting: first score after {first} ms");
    assert_eq!(waited["clips"][0]["provisional_frames"], 0);
}

/// Each clip's locked sector and clip score, run by run, by clip file.
type Scores = BTreeMap<PathBuf, (serde_json::Value, u64)>;

/// Scores every clip in `clips`, unpaced, in each sector mode, two clips
/// at a time.
fn score_every_clip(clips: &[PathBuf], dir: &Path) -> (Scores, Scores) {
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let played = common::map_clips(clips, |clip| {
        let source = format!("file:{}", clip.display());
        let run = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = dir.join(format!("{run}.json"));
        let both = [&["--no-pace"][..], &["--no-pace", "--wait-for-sector"]].map(|flags| {
            let played = report(&source, flags, &out);
            let clip = &played["clips"][0];
            (clip["sector"].clone(), clip["score"].as_u64().unwrap_or(99))
        });
        std::fs::remove_file(&out).unwrap();
        both
    });
    clips
        .iter()
        .zip(played)
        .map(|(clip, [provisional, waited])| ((clip.clone(), provisional), (clip.clone(), waited)))
        .unzip()
}

#[test]
fn the_locked_sector_and_the_clip_score_of_each_development_clip_are_unchanged() {
    // Every demo and development clip; under an emulator (scripts/arm-test),
    // where a clip takes a hundred times as long, one demo clip: what
    // differs between CPUs is the int8 kernel, which tests/agreement.rs
    // checks there.
    let mut clips = common::development_clips();
    if std::env::var_os("PLEURA_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
        clips.truncate(1);
    }
    let dir = tempfile::tempdir().unwrap();
    let (provisional, waited) = score_every_clip(&clips, dir.path());
    let mut changed = Vec::new();
    for clip in &clips {
        let (now, before) = (&provisional[clip], &waited[clip]);
        assert_eq!(now.0, before.0, "{}: the sector moved", clip.display());
        if now.1 != before.1 {
            changed.push(format!("{}: {} -> {}", clip.display(), before.1, now.1));
        }
    }
    println!(
        "{} clips; clip score changed on {}: {changed:#?}",
        clips.len(),
        changed.len()
    );
    assert!(
        changed.len() as f64 <= 0.01 * clips.len() as f64,
        "clip score changed on {} of {} clips: {changed:#?}",
        changed.len(),
        clips.len()
    );
}
