//! The int8 path agrees with the f32 path of the shipped model: the clip
//! score is the same on ≥ 99 % of the development clips, and the B-line
//! and consolidation masks each have an IoU ≥ 0.95 against f32's.
//!
//! Consolidation is a rare class (0.4 % of the pixels): on all 238 BLUES
//! clips it measured 0.9507, a thin margin.
//!
//! Under emulation the test runs on a subsample (below): every Nth clip, 2
//! frames each. There it checks that the ARM kernels compute what x86's
//! do (they give the same numbers), not the acceptance rates: with 30
//! clips of 2 frames, one near-tie clip is 3 % (patient_39_L2: f32 gives
//! p(0) = 0.385, p(1) = 0.391; int8 0.391, 0.387). So on a subsample the
//! clip bound is 0.95, the frame bound stays 0.99, and consolidation is
//! held at 0.93.
//!
//! Runs on the BLUES development clips when `../shared/data` is beside the
//! checkout (as in CI), else on the bundled demo clips; under emulation
//! `PLEURA_AGREEMENT_STRIDE=N` takes every Nth clip (see tests/agreement.rs)
//! and 2 frames of each.
//!
//! On the 5 demo clips (a new user's checkout, 40 frames) the 0.99 rates
//! cannot be checked: one near-tie frame is 2.5 % (measured: 38 of 40
//! frames agree). There the bounds are the lowest rates still consistent
//! with the 0.99 claim on that many items (`common::plausible_rate`: 3
//! disagreeing frames of 40, 1 clip of 5).
//!
//! Threads that share one int8 model get the same numbers as one thread.

mod common;

use pleura::model::{LusNet, Precision};
use std::path::PathBuf;

/// Frames taken from each clip, evenly spaced (2 under emulation, where
/// the point is that the ARM kernels compute what x86's do).
fn frames_per_clip() -> usize {
    if std::env::var_os("PLEURA_AGREEMENT_STRIDE").is_some() {
        2
    } else {
        8
    }
}

fn clips() -> Vec<PathBuf> {
    common::agreement_clips(&[
        "covid-score1.mp4",
        "covid-score2.mp4",
        "h1n1-whitelung.mp4",
        "healthy-score0.mp4",
        "viral-linear-score2.mp4",
    ])
}

#[test]
fn int8_and_f32_agree_on_clip_scores_and_segmentation() {
    common::init_threads();
    let int8 = LusNet::load(&common::shipped_model(), Precision::Int8).unwrap();
    let float = LusNet::load(&common::shipped_model(), Precision::F32).unwrap();
    let agreement = common::compare_paths(&int8, &float, &clips(), frames_per_clip());
    let (clip_count, frames) = (agreement.clips, agreement.frames);
    let clip_rate = agreement.clip_rate();
    let frame_rate = agreement.frame_rate();
    let (iou, either) = (agreement.iou(), &agreement.either);
    eprintln!(
        "{clip_count} clips, {frames} frames: clip score agreement {clip_rate:.4}, \
         frame score agreement {frame_rate:.4}, mask IoU per class {:?} {iou:.4?} \
         (pixels in either mask {either:?})",
        float.meta().seg_classes
    );
    let subsampled = std::env::var_os("PLEURA_AGREEMENT_STRIDE").is_some();
    let demo_only = common::dev_data("blues-dev").is_none();
    let (clip_bound, frame_bound) = match (demo_only, subsampled) {
        (true, _) => (
            common::plausible_rate(0.99, clip_count),
            common::plausible_rate(0.99, frames),
        ),
        (false, true) => (0.95, 0.99),
        (false, false) => (0.99, 0.99),
    };
    assert!(
        clip_rate >= clip_bound,
        "clip score agreement {clip_rate:.4} < {clip_bound:.4}"
    );
    assert!(
        frame_rate >= frame_bound,
        "frame score agreement {frame_rate:.4} < {frame_bound:.4}"
    );
    // Classes: background, b_line, consolidation. A class nearly absent
    // from every mask (the demo clips' consolidations) has no meaningful IoU.
    let consolidation_bound = if subsampled { 0.93 } else { 0.95 };
    for (class, bound) in [(1, 0.95), (2, consolidation_bound)] {
        if either[class] >= 1000 {
            assert!(
                iou[class] >= bound,
                "class {class}: IoU {:.4} over {} pixels",
                iou[class],
                either[class]
            );
        }
    }
}

#[test]
fn the_small_data_bound_allows_what_chance_allows_and_no_more() {
    // 40 frames at a true 99 %: 3 disagreements still happen more often
    // than once in a thousand runs, 4 do not.
    assert_eq!(common::plausible_rate(0.99, 40), 1.0 - 3.0 / 40.0);
    assert_eq!(common::plausible_rate(0.99, 5), 1.0 - 1.0 / 5.0);
    // Many items pin the rate down: 2000 frames allow about 1.7 %.
    let large = common::plausible_rate(0.99, 2000);
    assert!(large > 0.98 && large < 0.99, "{large}");
}

#[test]
fn threads_sharing_one_int8_model_each_get_their_own_frame_scored() {
    // Frames run at once on one model, from two threads (as when clips
    // are scored side by side): each gets what it gets alone. The frames
    // once shared one set of buffers under a lock held for the whole
    // frame, and a pool thread waiting inside one frame could start the
    // other and wait for that lock forever; so the work runs on its own
    // thread, and a hang fails the test instead of stopping the suite.
    // A hundred frames a thread; ten under emulation, where a frame takes
    // a hundred times as long and the locking is the same code.
    let emulated = std::env::var_os("PLEURA_TEST_RUNNER").is_some_and(|r| !r.is_empty());
    let frames_each = if emulated { 10 } else { 100 };
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        common::init_threads();
        let model = LusNet::load(&common::shipped_model(), Precision::Int8).unwrap();
        let len = model.meta().input_len();
        let frames: Vec<Vec<u8>> = (0..2u8)
            .map(|n| {
                (0..len)
                    .map(|i| ((i * (7 + usize::from(n))) % 251) as u8)
                    .collect()
            })
            .collect();
        let alone: Vec<_> = frames
            .iter()
            .map(|frame| model.predict(&[frame.as_slice()]).unwrap())
            .collect();
        let together = std::thread::scope(|scope| {
            let runs: Vec<_> = frames
                .iter()
                .map(|frame| {
                    let model = &model;
                    scope.spawn(move || {
                        (0..frames_each)
                            .map(|_| model.predict(&[frame.as_slice()]).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            runs.into_iter()
                .map(|run| run.join().unwrap())
                .collect::<Vec<_>>()
        });
        let same = alone
            .iter()
            .zip(&together)
            .all(|(alone, runs)| runs.iter().all(|run| run == alone));
        let _ = done.send(same);
    });
    let same = finished
        .recv_timeout(std::time::Duration::from_secs(600))
        .expect("both threads finished their frames within 10 minutes");
    assert!(same, "a frame scored beside another differs from it alone");
}
