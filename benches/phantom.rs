//! Phantom generation speed: frames per second at 256×256 on one core
//! (`cargo bench --bench phantom`). The target is ≥ 200 frames/s; the
//! table gives each score and probe, the median of 5 rounds of 100 frames,
//! and its ratio to the target.

use pleura::phantom::{Phantom, PhantomParams, Probe};
use std::time::Instant;

const FRAMES: u64 = 100;
const ROUNDS: usize = 5;
const TARGET_FPS: f64 = 200.0;

fn fps(params: PhantomParams) -> f64 {
    let phantom = Phantom::new(params);
    let started = Instant::now();
    let made = phantom.count();
    made as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    println!(
        "| score | probe | frames/s (median of {ROUNDS}) | × target {TARGET_FPS} |\n|---|---|---|---|"
    );
    for probe in [Probe::Convex, Probe::Linear] {
        for score in 0..4 {
            let mut runs: Vec<f64> = (0..ROUNDS as u64)
                .map(|seed| {
                    fps(PhantomParams {
                        score,
                        probe,
                        frames: FRAMES,
                        width: 256,
                        height: 256,
                        seed,
                    })
                })
                .collect();
            runs.sort_by(f64::total_cmp);
            let median = runs[ROUNDS / 2];
            println!(
                "| {score} | {probe:?} | {median:.0} | {:.2} |",
                median / TARGET_FPS
            );
        }
    }
}
