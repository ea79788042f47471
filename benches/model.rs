//! Per-frame model latency of each inference path on the same frames, in
//! one run (`cargo bench --bench model`; `scripts/bench` runs it at 1 and 2
//! threads). Paths: `f32` (im2col + candle's f32 gemm), `int8` (Pleura's
//! integer kernels, `src/model/int8.rs`) and `q8` (candle's `QMatMul` over
//! the Q8_0 weights). The machine is shared and noisy: the paths take turns
//! in rounds, and the median and p99 over all rounds are reported, with
//! each path's median as a ratio to f32's.
//!
//! Writes `target/bench/model-threads-N.json` (N from `RAYON_NUM_THREADS`;
//! `PLEURA_BENCH_OUT` names another file) with every latency sample, and
//! the model inputs it timed, u8 `[N, S, S]`, to
//! `target/bench/frames.safetensors`, so that `scripts/bench` times ONNX
//! Runtime on the very same frames.

use pleura::model::{LusNet, Precision};
use pleura::preprocess::{clip_inputs, detect_sector};
use pleura::source::decode_clip;
use std::path::PathBuf;
use std::time::Instant;

const ROUNDS: usize = 5;
/// Frames per round for each path; candle's `QMatMul` is ~20× slower.
fn frames_per_round(precision: Precision) -> usize {
    match precision {
        Precision::Quantized => 4,
        _ => 40,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    pleura::model::init_threads();
    let threads = pleura::model::threads();
    let model_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/lusnet-v3.gguf");
    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/demo/covid-score2.mp4");
    let frames = decode_clip(&clip, None).expect("the demo clip decodes");
    let roi = detect_sector(&frames).expect("a sector");
    let paths = [
        ("f32", Precision::F32),
        ("int8", Precision::Int8),
        ("q8", Precision::Quantized),
    ];
    let models: Vec<LusNet> = paths
        .iter()
        .map(|(_, p)| LusNet::load(&model_path, *p).expect("the model loads"))
        .collect();
    let size = models[0].meta().input_size;
    let meta = models[0].meta();
    let inputs = clip_inputs(&frames, roi, size, meta.history_step);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let frames_tensor = candle_core::Tensor::from_vec(
        inputs.concat(),
        (inputs.len(), meta.input_channels(), size, size),
        &candle_core::Device::Cpu,
    )
    .expect("frames tensor");
    frames_tensor
        .save_safetensors("frames", dir.join("frames.safetensors"))
        .expect("write the frames");
    let mut latencies = vec![Vec::new(); paths.len()];
    for round in 0..=ROUNDS {
        for (i, ((_, precision), model)) in paths.iter().zip(&models).enumerate() {
            for j in 0..frames_per_round(*precision) {
                let input = &inputs[(round * 40 + j) % inputs.len()];
                let started = Instant::now();
                model.predict(&[input]).expect("predict");
                if round > 0 {
                    // Round 0 warms caches and thread pools.
                    latencies[i].push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    }
    let mut results = Vec::new();
    let mut f32_median = 0.0;
    println!("threads {threads}, {size}x{size} input");
    println!(
        "{:<6} {:>10} {:>10} {:>8}",
        "path", "median ms", "p99 ms", "ratio"
    );
    for ((name, _), mut values) in paths.iter().zip(latencies) {
        values.sort_by(f64::total_cmp);
        let (median, p99) = (percentile(&values, 0.5), percentile(&values, 0.99));
        if *name == "f32" {
            f32_median = median;
        }
        let ratio = median / f32_median;
        println!("{name:<6} {median:>10.2} {p99:>10.2} {ratio:>7.2}x");
        results.push(serde_json::json!({
            "path": name,
            "threads": threads,
            "median_ms": median,
            "p99_ms": p99,
            "ratio_to_f32": ratio,
            "frames": values.len(),
            "samples_ms": values,
        }));
    }
    let path = std::env::var_os("PLEURA_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join(format!("model-threads-{threads}.json")));
    std::fs::write(&path, serde_json::to_vec_pretty(&results).expect("json")).expect("write");
    println!("wrote {}", path.display());
}
