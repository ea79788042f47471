//! The quantized path (candle `QMatMul`) and the f32 path of the shipped
//! model make the same decisions on real frames: argmax agreement ≥ 99 %.
//!
//! Runs on the BLUES development clips when `../shared/data` is beside the
//! checkout (as in CI), else on the bundled demo clips. Under emulation,
//! where the two networks take about 1 s a frame, `scripts/arm-test` sets
//! `PLEURA_AGREEMENT_STRIDE=N` and the test takes every Nth BLUES clip.

mod common;

use pleura::eval::prepare_clip;
use pleura::model::{LusNet, Precision};
use std::path::PathBuf;

/// Frames taken from each clip, evenly spaced.
const FRAMES_PER_CLIP: usize = 4;

fn clips() -> Vec<PathBuf> {
    common::agreement_clips(&["healthy-score0.mp4", "covid-score2.mp4"])
}

#[test]
fn quantized_and_f32_paths_agree_on_at_least_99_percent_of_frames() {
    common::init_threads();
    let quantized = LusNet::load(&common::shipped_model(), Precision::Quantized).unwrap();
    let float = LusNet::load(&common::shipped_model(), Precision::F32).unwrap();
    let size = quantized.meta().input_size;
    let (mut frames, mut score_agree, mut clip_agree, mut clip_count) =
        (0usize, 0usize, 0usize, 0usize);
    let (mut seg_cells, mut seg_agree) = (0usize, 0usize);
    for clip in clips() {
        let prepared = prepare_clip(&clip, size, Some(FRAMES_PER_CLIP)).unwrap();
        let views: Vec<&[u8]> = prepared.frames.iter().map(Vec::as_slice).collect();
        let q = quantized.predict(&views).unwrap();
        let f = float.predict(&views).unwrap();
        for (a, b) in q.iter().zip(&f) {
            frames += 1;
            score_agree += usize::from(a.score() == b.score());
            seg_cells += a.seg_labels.len();
            seg_agree += a
                .seg_labels
                .iter()
                .zip(&b.seg_labels)
                .filter(|(x, y)| x == y)
                .count();
        }
        let (cq, cf) = (
            pleura::scoring::clip_score(&q).unwrap(),
            pleura::scoring::clip_score(&f).unwrap(),
        );
        clip_count += 1;
        clip_agree += usize::from(cq.score == cf.score);
    }
    let frame_rate = score_agree as f64 / frames as f64;
    let seg_rate = seg_agree as f64 / seg_cells as f64;
    let clip_rate = clip_agree as f64 / clip_count as f64;
    eprintln!(
        "{frames} frames of {clip_count} clips: score argmax agreement {frame_rate:.4}, segmentation {seg_rate:.4}, clip {clip_rate:.4}"
    );
    assert!(frame_rate >= 0.99, "frame score agreement {frame_rate:.4}");
    assert!(seg_rate >= 0.99, "segmentation agreement {seg_rate:.4}");
    assert!(clip_rate >= 0.99, "clip score agreement {clip_rate:.4}");
}
