//! The quantized path (candle `QMatMul`) and the f32 path of the shipped
//! model make the same decisions on real frames: argmax agreement ≥ 99 %.
//!
//! Runs on the BLUES development clips when `../shared/data` is beside the
//! checkout (as in CI), else on the bundled demo clips. Under emulation,
//! where the two networks take about 1 s a frame, `scripts/arm-test` sets
//! `PLEURA_AGREEMENT_STRIDE=N` and the test takes every Nth BLUES clip.

mod common;

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
    let agreement = common::compare_paths(&quantized, &float, &clips(), FRAMES_PER_CLIP);
    let (frames, clip_count) = (agreement.frames, agreement.clips);
    let frame_rate = agreement.frame_rate();
    let seg_rate = agreement.cell_rate();
    let clip_rate = agreement.clip_rate();
    eprintln!(
        "{frames} frames of {clip_count} clips: score argmax agreement {frame_rate:.4}, segmentation {seg_rate:.4}, clip {clip_rate:.4}"
    );
    assert!(frame_rate >= 0.99, "frame score agreement {frame_rate:.4}");
    assert!(seg_rate >= 0.99, "segmentation agreement {seg_rate:.4}");
    assert!(clip_rate >= 0.99, "clip score agreement {clip_rate:.4}");
}
