//! The v3 heads of the shipped model at run time, on the bundled demo
//! clips: the findings gate the overlay frame by frame, and a file whose
//! clip rule is the clip head (`attention_ordinal`) scores clips live over
//! its window, settles, and decides the same on the int8 and f32 paths.
//!
//! The shipped file keeps v2's clip rule (its card says why); these tests
//! switch the same weights to the clip head's rule, as a file trained to
//! it would declare.
//!
//! Under emulation (`scripts/arm-test`, where a frame costs about 100
//! times more) they take two of the clips: the ARM kernels compute what
//! x86's do, and the native run checks all five.

mod common;

use pleura::eval::{predict_clip, prepare_clip};
use pleura::model::ModelFile;
use pleura::model::heads::{self, B_LINES, CONSOLIDATION, FINDING_THRESHOLD};
use pleura::model::{LusNet, Precision};
use pleura::scoring::{ClipTracker, ScoreUpdate};

const DEMO: [&str; 5] = [
    "covid-score1.mp4",
    "covid-score2.mp4",
    "h1n1-whitelung.mp4",
    "healthy-score0.mp4",
    "viral-linear-score2.mp4",
];

/// The demo clips these tests play: all five natively, two under
/// emulation.
fn demo_clips() -> &'static [&'static str] {
    match std::env::var_os("PLEURA_TEST_RUNNER") {
        Some(_) => &DEMO[1..=2],
        None => &DEMO,
    }
}

fn shipped_with_clip_head(precision: Precision) -> LusNet {
    let mut file = ModelFile::read(&common::shipped_model()).expect("shipped model reads");
    file.meta.aggregation = heads::AGGREGATION.into();
    LusNet::from_file(file, precision).expect("network builds")
}

/// Frames taken from each demo clip, evenly spaced: enough for a clip to
/// settle (16 unchanged), few enough for the suite under emulation.
const FRAMES: usize = 32;

/// Every update of a demo clip played frame by frame through a tracker.
fn play(model: &LusNet, clip: &str) -> Vec<ScoreUpdate> {
    let path = common::repo(&format!("tests/demo/{clip}"));
    let meta = model.meta();
    let prepared = prepare_clip(&path, meta.input_size, Some(FRAMES), meta.history_step)
        .expect("demo clip decodes");
    let predictions = predict_clip(model, &prepared).expect("frames score");
    let mut tracker = ClipTracker::new(model.meta().seg_classes.len());
    predictions.iter().map(|p| tracker.update(p)).collect()
}

#[test]
fn a_frame_whose_finding_head_says_no_gets_no_tint_of_that_class() {
    common::init_threads();
    let model = LusNet::load(&common::shipped_model(), Precision::Int8).expect("shipped model");
    let (b_line, consolidation) = (
        model.meta().seg_class("b_line").expect("b_line class") as u8,
        model
            .meta()
            .seg_class("consolidation")
            .expect("consolidation class") as u8,
    );
    let (mut gated, mut frames) = (0, 0);
    for &clip in demo_clips() {
        let path = common::repo(&format!("tests/demo/{clip}"));
        let meta = model.meta();
        let prepared =
            prepare_clip(&path, meta.input_size, Some(12), meta.history_step).expect("decodes");
        for p in predict_clip(&model, &prepared).expect("frames score") {
            let probs = p
                .heads
                .expect("the shipped model has the v3 heads")
                .finding_probs();
            frames += 1;
            for (finding, class) in [(B_LINES, b_line), (CONSOLIDATION, consolidation)] {
                if probs[finding] < FINDING_THRESHOLD {
                    gated += 1;
                    assert!(
                        !p.seg_labels.contains(&class),
                        "{clip}: class {class} tinted on a frame whose head says {:.2}",
                        probs[finding]
                    );
                }
            }
        }
    }
    // The gate was exercised, not vacuous.
    assert!(
        gated >= frames / 2,
        "{gated} gated decisions on {frames} frames"
    );
}

#[test]
fn the_clip_head_scores_clips_live_and_settles() {
    common::init_threads();
    let model = shipped_with_clip_head(Precision::Int8);
    for &clip in demo_clips() {
        let updates = play(&model, clip);
        let last = updates.last().expect("frames");
        let probs = last.clip.probs;
        assert!(
            (probs.iter().sum::<f32>() - 1.0).abs() < 1e-4,
            "{clip}: {probs:?}"
        );
        assert_eq!(last.clip.confidence, probs[usize::from(last.clip.score)]);
        // The score is the median of the ordinal distribution.
        let below: f32 = probs[..=usize::from(last.clip.score)].iter().sum();
        assert!(below >= 0.5, "{clip}: {probs:?}");
        assert!(last.findings.is_some(), "{clip}: no clip findings");
        assert!(
            updates.iter().any(|u| u.stable),
            "{clip}: the clip head's score never settled in {} frames",
            updates.len()
        );
    }
}

#[test]
fn int8_and_f32_clip_heads_decide_the_same_on_the_demo_clips() {
    common::init_threads();
    let (int8, float) = (
        shipped_with_clip_head(Precision::Int8),
        shipped_with_clip_head(Precision::F32),
    );
    let (mut scores, mut calls, mut decided) = (0, 0, 0);
    for &clip in demo_clips() {
        let (a, b) = (play(&int8, clip), play(&float, clip));
        let (a, b) = (a.last().expect("frames"), b.last().expect("frames"));
        scores += usize::from(a.clip.score == b.clip.score);
        let (fa, fb) = (a.findings.expect("findings"), b.findings.expect("findings"));
        // A finding f32 puts within 0.05 of the threshold is a near-tie,
        // which a path's rounding may tip either way.
        for (pa, pb) in fa
            .iter()
            .zip(fb)
            .filter(|(_, pb)| (*pb - FINDING_THRESHOLD).abs() > 0.05)
        {
            decided += 1;
            calls += usize::from((*pa >= FINDING_THRESHOLD) == (pb >= FINDING_THRESHOLD));
        }
    }
    // The 0.99 agreement claim, checked as far as so few clips can check it
    // (common::plausible_rate: the lowest rate still consistent with it).
    let clips = demo_clips().len();
    let rate = scores as f64 / clips as f64;
    assert!(
        rate >= common::plausible_rate(0.99, clips),
        "clip scores agree on {scores} of {clips}"
    );
    assert!(decided >= 2 * clips, "only {decided} clear finding calls");
    let rate = calls as f64 / decided as f64;
    assert!(
        rate >= common::plausible_rate(0.99, decided),
        "finding calls agree on {calls} of {decided}"
    );
}
