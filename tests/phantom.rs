//! The phantom: its masks mark what its pixels show, its files are
//! complete, and it plays through the pipeline like any source.

mod common;

use pleura::phantom::{
    CLASS_B_LINE, CLASS_CONSOLIDATION, Phantom, PhantomFrame, PhantomParams, Probe,
};
use serde_json::Value;

fn clip(score: u8, probe: Probe, seed: u64, frames: u64) -> Vec<PhantomFrame> {
    Phantom::new(PhantomParams {
        score,
        probe,
        frames,
        seed,
        ..PhantomParams::default()
    })
    .collect()
}

/// Mean gray level of the pixels of `class` in the lower half of the image.
fn mean_level(frames: &[PhantomFrame], class: u8) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0usize);
    for f in frames {
        let half = f.image.pixels.len() / 2;
        for (p, m) in f.image.pixels[half..].iter().zip(&f.mask[half..]) {
            if *m == class && *p > 0 {
                sum += f64::from(*p);
                count += 1;
            }
        }
    }
    (count > 100).then(|| sum / count as f64)
}

#[test]
fn b_line_masks_cover_brighter_columns_than_the_lung_between_them() {
    for probe in [Probe::Convex, Probe::Linear] {
        for seed in 0..4 {
            let frames = clip(1, probe, seed, 6);
            let (Some(b_line), Some(lung)) =
                (mean_level(&frames, CLASS_B_LINE), mean_level(&frames, 0))
            else {
                continue;
            };
            assert!(
                b_line > 1.2 * lung,
                "{probe:?} seed {seed}: B-lines {b_line:.1}, lung {lung:.1}"
            );
        }
    }
}

#[test]
fn masks_follow_the_score() {
    let area = |score, class: u8| -> f32 {
        (0..4)
            .flat_map(|seed| clip(score, Probe::Convex, seed, 2))
            .map(|f| f.areas[usize::from(class)])
            .sum::<f32>()
            / 8.0
    };
    assert_eq!(
        area(0, CLASS_CONSOLIDATION),
        0.0,
        "a normal lung has no consolidation"
    );
    assert_eq!(area(1, CLASS_CONSOLIDATION), 0.0);
    assert!(area(2, CLASS_CONSOLIDATION) > 0.0);
    assert!(area(1, CLASS_B_LINE) > area(0, CLASS_B_LINE));
    assert!(
        area(3, CLASS_B_LINE) > area(1, CLASS_B_LINE),
        "white lung is mostly confluent B-lines"
    );
}

#[test]
fn the_lung_slides_below_the_pleura_while_the_chest_wall_stays() {
    // Over a quarter breath the texture below the pleura changes more than
    // the soft tissue above it.
    let frames = clip(0, Probe::Linear, 3, 30);
    // Mean absolute change relative to the mean level of the rows.
    let diff = |a: &PhantomFrame, b: &PhantomFrame, rows: std::ops::Range<usize>| -> f64 {
        let w = a.image.width;
        let pixels: Vec<usize> = rows.flat_map(|y| (0..w).map(move |x| y * w + x)).collect();
        let change: f64 = pixels
            .iter()
            .map(|&i| f64::from(a.image.pixels[i].abs_diff(b.image.pixels[i])))
            .sum();
        let level: f64 = pixels.iter().map(|&i| f64::from(a.image.pixels[i])).sum();
        change / level.max(1.0)
    };
    let (first, later) = (&frames[0], &frames[29]);
    let wall = diff(first, later, 10..30);
    let lung = diff(first, later, 150..170);
    assert!(lung > wall, "lung {lung} vs chest wall {wall}");
}

#[test]
fn the_phantom_command_writes_frames_masks_and_labels() {
    let out = tempfile::tempdir().unwrap();
    common::succeed(
        common::pleura()
            .args([
                "phantom", "--score", "2", "--probe", "linear", "--frames", "5", "--size",
                "160x120", "--seed", "7", "--out",
            ])
            .arg(out.path()),
    );
    let labels: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("labels.json")).unwrap()).unwrap();
    assert_eq!(labels["score"], 2);
    assert_eq!(labels["probe"], "linear");
    assert_eq!(labels["params"]["seed"], 7);
    assert_eq!(labels["classes"][2], "consolidation");
    assert_eq!(labels["frames"].as_array().unwrap().len(), 5);
    for name in ["frames/0000.png", "masks/0004.png"] {
        let image = image::open(out.path().join(name)).unwrap();
        assert_eq!((image.width(), image.height()), (160, 120), "{name}");
    }
    let mask = image::open(out.path().join("masks/0000.png"))
        .unwrap()
        .into_luma8();
    assert!(
        mask.pixels().all(|p| p.0[0] <= 2),
        "mask values are class indices"
    );
    let bad = common::pleura()
        .args(["phantom", "--score", "5", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn the_phantom_plays_through_the_pipeline() {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("r.json");
    common::succeed(
        common::pleura()
            .args([
                "run",
                "--source",
                "phantom:score=3,frames=40,seed=2",
                "--display",
                "none",
                "--no-pace",
                "--report",
            ])
            .arg(&report),
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["frames"]["scored"], 40);
    assert_eq!(r["clips"][0]["name"], "phantom-score3-convex-seed2");
}

#[test]
fn a_phantom_training_set_is_exported_and_the_model_is_scored_against_its_masks() {
    let out = tempfile::tempdir().unwrap();
    let set = out.path().join("set");
    common::succeed(
        common::pleura()
            .args([
                "dataset", "phantom", "--clips", "1", "--frames", "2", "--out",
            ])
            .arg(&set),
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(set.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["clips"].as_array().unwrap().len(),
        8,
        "4 scores × 2 probes"
    );
    assert_eq!(index["seg_size"], 32);
    let masks = std::fs::read(set.join("masks/0000.u8")).unwrap();
    assert_eq!(masks.len(), 2 * 32 * 32);
    let dice = common::succeed(common::pleura().args(["dataset", "dice"]).arg(&set));
    let stdout = String::from_utf8_lossy(&dice.stdout);
    assert!(stdout.contains("frames        16"), "{stdout}");
    assert!(stdout.contains("Dice b_line"), "{stdout}");
    // A damaged set is named.
    std::fs::write(set.join("masks/0003.u8"), b"short").unwrap();
    let damaged = common::pleura()
        .args(["dataset", "dice"])
        .arg(&set)
        .output()
        .unwrap();
    assert!(!damaged.status.success());
    assert!(String::from_utf8_lossy(&damaged.stderr).contains("0003.u8"));
}
