//! Frames that cannot be lung ultrasound get no score (issue 16): blank,
//! flat, tiny or frozen pictures are rejected with a reason, and real scans
//! are not.

mod common;

use pleura::frame::GrayFrame;
use pleura::preprocess::quality::FrameGate;
use pleura::preprocess::{LOCK_FRAMES, Roi, SectorMode, SectorTracker, Tracked};
use pleura::source::decode_clip;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the checks did to one clip.
struct Checked {
    /// Frames decoded.
    frames: usize,
    /// Rejected frames by reason.
    rejected: BTreeMap<&'static str, usize>,
    /// The brightest rejected frame's mean gray level (0–255), by reason.
    brightest_rejected: BTreeMap<&'static str, f32>,
    /// The sectors locked with provisional sectors before the lock (the
    /// live default), and with the first frames waiting for it (before
    /// issue 21): the same lock, from the same frames.
    locks: (Vec<Option<Roi>>, Vec<Option<Roi>>),
}

/// The sectors a tracker locked over `frames`.
fn locks(mode: SectorMode, frames: &[GrayFrame]) -> Vec<Option<Roi>> {
    let mut tracker = SectorTracker::new(mode);
    let mut ready = Vec::new();
    for frame in frames {
        let _ = tracker.push(frame.clone(), &mut ready);
    }
    tracker.finish(&mut ready);
    ready
        .into_iter()
        .filter_map(|t| match t {
            Tracked::Locked(roi) => Some(roi),
            Tracked::Frame { .. } => None,
        })
        .collect()
}

/// Plays a clip through the live pipeline's path: sector tracking, then
/// the frame checks (everything but the network).
fn check_clip(clip: &Path) -> Checked {
    let frames = decode_clip(clip, None).unwrap_or_else(|e| panic!("{}: {e}", clip.display()));
    let total = frames.len();
    let waited = locks(SectorMode::Wait, &frames);
    let mut tracker = SectorTracker::new(SectorMode::Auto);
    let mut gate = FrameGate::new();
    let mut ready = Vec::new();
    let mut rejected = BTreeMap::new();
    let mut brightest_rejected = BTreeMap::new();
    for frame in frames {
        if tracker.push(frame, &mut ready).is_err() {
            *rejected.entry("size_changed").or_default() += 1;
        }
    }
    tracker.finish(&mut ready);
    let mut locked = Vec::new();
    for tracked in ready {
        let (frame, sector) = match tracked {
            Tracked::Frame { frame, sector, .. } => (frame, sector),
            Tracked::Locked(roi) => {
                locked.push(roi);
                continue;
            }
        };
        if let Err(reason) = gate.admit(&frame, sector, 128) {
            *rejected.entry(reason.key()).or_default() += 1;
            let mean =
                frame.pixels.iter().map(|&p| f32::from(p)).sum::<f32>() / frame.pixels.len() as f32;
            let brightest = brightest_rejected.entry(reason.key()).or_insert(0f32);
            *brightest = brightest.max(mean);
        }
    }
    Checked {
        frames: total,
        rejected,
        brightest_rejected,
        locks: (locked, waited),
    }
}

#[test]
fn on_every_development_clip_only_blank_lead_in_frames_are_rejected_and_the_lock_is_unchanged() {
    // Issue 16 asks for fewer than 1 % of frames rejected on every
    // development clip. Some BLUES and POCUS recordings open with one to
    // six black frames; those are rightly rejected (no image), which is
    // 1-7 % of a short clip. So the test holds the rule to what it must
    // do: no frame that shows anything is rejected (every rejected frame
    // is black: mean gray under 2 of 255, or under 5 for the frames of a
    // fade-in before the lock, see below), and under 1 % of all frames are.
    let clips = common::development_clips();
    let (mut frames, mut rejected) = (0, 0);
    let mut with_rejections = Vec::new();
    for (clip, checked) in clips.iter().zip(common::map_clips(&clips, check_clip)) {
        // Issue 21: scoring before the lock does not change the lock.
        assert_eq!(
            checked.locks.0,
            checked.locks.1,
            "{}: the lock differs with a provisional sector",
            clip.display()
        );
        let n: usize = checked.rejected.values().sum();
        frames += checked.frames;
        rejected += n;
        if n > 0 {
            with_rejections.push((clip.clone(), checked));
        }
    }
    println!(
        "{} clips, {frames} frames, {rejected} rejected ({:.3} %); clips with rejections: {}",
        clips.len(),
        100.0 * rejected as f64 / frames as f64,
        with_rejections.len()
    );
    // A black frame has no picture and, before the lock, no sector either:
    // it is rejected for one or the other. A clip that fades in may also
    // open with frames nearly black (mean under 5 of 255) whose sector
    // cannot be told from them alone: before the lock, they get no sector.
    let mut with_a_picture = Vec::new();
    for (clip, checked) in &with_rejections {
        println!(
            "  {}: {:?} of {} frames, brightest rejected frame mean by reason {:.2?}",
            clip.display(),
            checked.rejected,
            checked.frames,
            checked.brightest_rejected
        );
        let blank = checked
            .brightest_rejected
            .iter()
            .all(|(&reason, &mean)| match reason {
                "no_image" => mean < 2.0,
                "no_sector" => mean < 5.0,
                _ => false,
            });
        if !blank {
            with_a_picture.push(clip.display().to_string());
        }
    }
    assert!(
        with_a_picture.is_empty(),
        "frames with a picture were rejected in {with_a_picture:?}"
    );
    assert!(
        (rejected as f64) < 0.01 * frames as f64,
        "{rejected} of {frames} frames rejected"
    );
}

/// Writes a 4-second clip made by ffmpeg's `lavfi` input `source`.
fn synthetic_clip(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", source])
        .args(["-t", "4", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {name}");
    path
}

/// `pleura run` on a clip with a report: the exit status, stderr and the
/// report.
fn run_clip(clip: &Path, report: &Path) -> (bool, String, serde_json::Value) {
    let output = common::pleura()
        .args(["run", "--no-pace", "--display", "none", "--source"])
        .arg(format!("file:{}", clip.display()))
        .arg("--report")
        .arg(report)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    )
}

#[test]
fn black_white_gray_noise_and_sliver_clips_score_no_frame_and_say_why() {
    // Issue 16: all-white and all-black clips were scored "0 (confidence
    // 0.93), stable", and 16-pixel-wide clips "stable" from a sliver.
    let dir = tempfile::tempdir().unwrap();
    let covid = common::repo("tests/demo/covid-score1.mp4");
    let sliver = |name: &str, crop: &str| {
        let path = dir.path().join(name);
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i"])
            .arg(&covid)
            .args(["-vf", crop, "-pix_fmt", "yuv420p"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    };
    let cases = [
        (
            synthetic_clip(dir.path(), "black.mp4", "color=c=black:s=320x240:r=25"),
            "no_sector",
        ),
        (
            synthetic_clip(dir.path(), "white.mp4", "color=c=white:s=320x240:r=25"),
            "no_sector",
        ),
        (
            synthetic_clip(dir.path(), "gray.mp4", "color=c=0x707070:s=320x240:r=25"),
            "no_sector",
        ),
        (sliver("narrow.mp4", "crop=16:ih:100:0"), "small_sector"),
        (sliver("flat.mp4", "crop=iw:16:0:100"), "small_sector"),
    ];
    for (clip, reason) in cases {
        let (ok, stderr, report) = run_clip(&clip, &dir.path().join("report.json"));
        let name = clip.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!ok, "{name} was scored: {report}");
        assert!(
            stderr.contains("no frame could be scored") && stderr.contains(reason),
            "{name}: {stderr}"
        );
        let frames = &report["frames"];
        assert_eq!(frames["scored"], 0, "{name}");
        assert!(frames["captured"].as_u64().unwrap() >= 90, "{name}");
        assert_eq!(frames["rejected"], frames["captured"], "{name}");
        // Before the lock, a frame may be cropped to a provisional sector
        // where the lock finds none (a white screen is bright, but nothing
        // in it moves): the picture checks reject those frames instead.
        let captured = frames["captured"].as_u64().unwrap();
        let before_lock = (LOCK_FRAMES - 1) as u64;
        for named in [
            &report["rejected"][reason],
            &report["unscored"][0]["rejected"][reason],
        ] {
            let named = named.as_u64().unwrap_or(0);
            assert!(
                (captured - before_lock..=captured).contains(&named),
                "{name}: {named} of {captured} frames rejected for {reason}: {report}"
            );
        }
        assert_eq!(report["clips"].as_array().unwrap().len(), 0, "{name}");
        // The offline path says the same, not "no frames".
        let output = common::pleura().arg("score").arg(&clip).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("no frame can be scored") && stderr.contains(&format!("({reason} ")),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_clip_that_freezes_is_scored_until_the_freeze_then_rejected_as_frozen() {
    // A scanner's freeze button: 60 live frames, then frame 60 held for
    // 140 more. Two seconds of the still picture are scored (a hand at
    // rest), the rest are not.
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.mp4");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(common::repo("tests/demo/covid-score2.mp4"))
        .args(["-vf", "loop=loop=150:size=1:start=60,setpts=N/25/TB"])
        .args(["-frames:v", "200", "-pix_fmt", "yuv420p"])
        .arg(&still)
        .status()
        .unwrap();
    assert!(status.success());
    let (ok, stderr, report) = run_clip(&still, &dir.path().join("report.json"));
    assert!(ok, "{stderr}");
    let frames = &report["frames"];
    let frozen = report["rejected"]["frozen"].as_u64().unwrap_or(0);
    let scored = frames["scored"].as_u64().unwrap();
    let still_scored = pleura::preprocess::quality::FROZEN_FRAMES as u64;
    assert_eq!(frames["captured"], 200);
    // Within a few frames: the encoder refines the held picture over its
    // first copies, and the clip's own frames before it barely move.
    let expected = 61 + still_scored - 1;
    assert!(
        (expected - 15..=expected + 15).contains(&scored),
        "{scored} scored, about {expected} expected"
    );
    assert_eq!(scored + frozen, 200, "{report}");
    assert_eq!(report["clips"][0]["rejected"]["frozen"], frozen);
}
