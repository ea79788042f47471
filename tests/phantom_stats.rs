//! Phantom frames look like real lung ultrasound of the same score, by
//! three simple statistics measured on the model's input (the sector,
//! cropped and resized to 128×128, exactly as `pleura` sees frames):
//!
//! * the mean depth profile: the mean gray level of 8 bands of 16 rows;
//! * the speckle histogram: the share of pixels in 8 bins of 32 gray levels;
//! * the fraction of bright vertical columns: below the top quarter and
//!   within the central three quarters, the share of columns whose mean
//!   exceeds 1.25 × the median column mean (B-lines, white lung).
//!
//! The real spread is taken per score over the BLUES development clips
//! (4 frames per clip, averaged per clip): the bounds are the 5th and 95th
//! percentiles of the clips. The phantom's value is the mean over 6 seeds
//! × 8 frames, and must fall within those bounds for every band, bin and
//! the column fraction.
//!
//! The bounds are committed in `tests/fixtures/blues-stats-bounds.json`
//! (percentiles only; no BLUES pixel is in the repository), so the check
//! runs where the data is not. Where `../shared/data/blues-dev` is present,
//! the bounds are recomputed and must equal the committed ones;
//! `PLEURA_BLESS=1` rewrites the file.

mod common;

use pleura::frame::GrayFrame;
use pleura::phantom::{Phantom, PhantomParams, Probe};
use pleura::preprocess::{crop_resize, detect_sector};
use pleura::source::decode_clip;
use std::path::Path;

const SIZE: usize = 128;
const BANDS: usize = 8;
const BINS: usize = 8;
/// Number of statistics: bands, bins, bright-column fraction.
const STATS: usize = BANDS + BINS + 1;

/// The statistics of one 128×128 frame.
fn stats(frame: &[u8]) -> [f64; STATS] {
    let mut out = [0.0; STATS];
    for (i, &p) in frame.iter().enumerate() {
        out[(i / SIZE) * BANDS / SIZE] += f64::from(p) / (SIZE * SIZE / BANDS) as f64;
        out[BANDS + usize::from(p) * BINS / 256] += 1.0 / (SIZE * SIZE) as f64;
    }
    let (top, left, right) = (SIZE / 4, SIZE / 8, SIZE - SIZE / 8);
    let mut columns: Vec<f64> = (left..right)
        .map(|x| {
            (top..SIZE)
                .map(|y| f64::from(frame[y * SIZE + x]))
                .sum::<f64>()
                / (SIZE - top) as f64
        })
        .collect();
    let means = columns.clone();
    columns.sort_by(f64::total_cmp);
    let median = columns[columns.len() / 2];
    out[STATS - 1] =
        means.iter().filter(|&&m| m > 1.25 * median).count() as f64 / means.len() as f64;
    out
}

fn mean(rows: &[[f64; STATS]]) -> [f64; STATS] {
    let mut m = [0.0; STATS];
    for r in rows {
        for (a, b) in m.iter_mut().zip(r) {
            *a += b / rows.len() as f64;
        }
    }
    m
}

/// Crops frames to their sector at the model's input size, as `pleura` does.
fn model_view(frames: &[GrayFrame]) -> Vec<Vec<u8>> {
    let roi = detect_sector(frames).unwrap();
    frames
        .iter()
        .filter_map(|f| crop_resize(f, roi, SIZE))
        .collect()
}

/// Per-clip statistics of the BLUES clips of each score, when the data is
/// beside the checkout.
fn blues_clip_stats() -> Option<[Vec<[f64; STATS]>; 4]> {
    let dir = common::dev_data("blues-dev")?;
    let mut labels = csv::Reader::from_path(dir.join("severity.csv")).unwrap();
    let (mut scores, mut clips) = (Vec::new(), Vec::new());
    for row in labels.records() {
        let row = row.unwrap();
        let Ok(score) = row[1].trim().parse::<f64>() else {
            continue;
        };
        scores.push(score as usize);
        clips.push(dir.join("videos").join(format!("{}.mp4", &row[0])));
    }
    let clip_stats = common::map_clips(&clips, |clip| {
        let frames = decode_clip(clip, Some(4)).ok()?;
        let view: Vec<[f64; STATS]> = model_view(&frames).iter().map(|f| stats(f)).collect();
        Some(mean(&view))
    });
    let mut per_score: [Vec<[f64; STATS]>; 4] = Default::default();
    for (score, clip_stats) in scores.into_iter().zip(clip_stats) {
        if let Some(clip_stats) = clip_stats {
            per_score[score].push(clip_stats);
        }
    }
    Some(per_score)
}

/// The 5th–95th percentile bounds of each statistic, per score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Bounds {
    /// Clips behind the bounds of each score.
    clips: [usize; 4],
    /// `[score][stat] = [low, high]`.
    bounds: Vec<Vec<[f64; 2]>>,
}

fn bounds_of(clips: &[Vec<[f64; STATS]>; 4]) -> Bounds {
    let bounds = clips
        .iter()
        .map(|clips| {
            (0..STATS)
                .map(|stat| {
                    let mut values: Vec<f64> = clips.iter().map(|c| c[stat]).collect();
                    if values.is_empty() {
                        return [0.0, 0.0];
                    }
                    let round = |v: f64| (v * 1e6).round() / 1e6;
                    [
                        round(percentile(&mut values, 0.05)),
                        round(percentile(&mut values, 0.95)),
                    ]
                })
                .collect()
        })
        .collect();
    Bounds {
        clips: [0, 1, 2, 3].map(|s| clips[s].len()),
        bounds,
    }
}

/// The committed bounds, checked against the data when it is here.
fn real_bounds() -> Bounds {
    let path = common::repo("tests/fixtures/blues-stats-bounds.json");
    if let Some(clips) = blues_clip_stats() {
        let live = bounds_of(&clips);
        if std::env::var_os("PLEURA_BLESS").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&live).unwrap()).unwrap();
        }
        let committed: Bounds = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            committed,
            live,
            "{} is stale: regenerate with PLEURA_BLESS=1",
            path.display()
        );
        return live;
    }
    eprintln!("../shared/data/blues-dev absent: using the committed bounds");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn phantom_stats(score: u8) -> [f64; STATS] {
    let mut all = Vec::new();
    for seed in 0..6 {
        let phantom = Phantom::new(PhantomParams {
            score,
            probe: Probe::Convex,
            frames: 8,
            width: 256,
            height: 256,
            seed: 100 + seed,
        });
        let frames: Vec<GrayFrame> = phantom.map(|f| f.image).collect();
        all.extend(model_view(&frames).iter().map(|f| stats(f)));
    }
    mean(&all)
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn name(stat: usize) -> String {
    match stat {
        s if s < BANDS => format!("depth band {s}"),
        s if s < BANDS + BINS => format!("histogram bin {}", s - BANDS),
        _ => "bright columns".into(),
    }
}

#[test]
fn phantom_frames_match_real_frames_of_the_same_score() {
    let real = real_bounds();
    let mut failures = Vec::new();
    for score in 0..4u8 {
        assert!(
            real.clips[usize::from(score)] >= 20,
            "too few real clips of score {score}: {real:?}"
        );
        let phantom = phantom_stats(score);
        let bounds = &real.bounds[usize::from(score)];
        for (stat, (&[lo, hi], value)) in bounds.iter().zip(phantom).enumerate() {
            let ok = (lo..=hi).contains(&value);
            eprintln!(
                "score {score} {:<16} real [{lo:7.3}, {hi:7.3}] phantom {value:7.3} {}",
                name(stat),
                if ok { "" } else { "OUT" }
            );
            if !ok {
                failures.push(format!(
                    "score {score}: {} {value:.3} outside [{lo:.3}, {hi:.3}]",
                    name(stat)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_same_seed_gives_the_same_clip() {
    let params = PhantomParams {
        score: 2,
        frames: 3,
        seed: 42,
        ..PhantomParams::default()
    };
    let clip = |p| Phantom::new(p).collect::<Vec<_>>();
    let (a, b) = (clip(params), clip(params));
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.image.pixels, y.image.pixels);
        assert_eq!(x.mask, y.mask);
    }
    let other = clip(PhantomParams { seed: 43, ..params });
    assert_ne!(a[0].image.pixels, other[0].image.pixels);
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).is_dir());
}
