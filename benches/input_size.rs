//! How LusNet's cost grows with its input size: per-frame latency of the
//! f32 and quantized paths at 96², 128² and 160², same weights' shapes,
//! same run. Run with `cargo bench --bench input_size`.
//!
//! Weights are random: latency does not depend on their values.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use pleura::model::ModelFile;
use pleura::model::arch::{conv_specs, macs_per_frame, score_shape};
use pleura::model::{LusNet, ModelMeta, Precision};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const WIDTHS: [usize; 4] = [16, 32, 64, 128];
const CLASSES: usize = 3;
const RUNS: usize = 30;

fn random_model(input_size: usize) -> candle_core::Result<ModelFile> {
    let mut tensors = BTreeMap::new();
    let mut layers: Vec<(String, (usize, usize))> = conv_specs(1, WIDTHS, CLASSES)
        .into_iter()
        .map(|(name, spec)| (name.to_string(), spec.weight_shape()))
        .collect();
    layers.push(("score".into(), score_shape(WIDTHS)));
    for (name, shape) in layers {
        let weight = Tensor::randn(0f32, 0.1, shape, &Device::Cpu)?;
        tensors.insert(
            format!("{name}.weight"),
            Arc::new(QTensor::quantize(&weight, GgmlDType::Q8_0)?),
        );
        let bias = Tensor::zeros(shape.0, candle_core::DType::F32, &Device::Cpu)?;
        tensors.insert(
            format!("{name}.bias"),
            Arc::new(QTensor::quantize(&bias, GgmlDType::F32)?),
        );
    }
    Ok(ModelFile {
        path: "random".into(),
        meta: ModelMeta {
            architecture: "lusnet".into(),
            version: 1,
            input_size,
            history_step: 0,
            widths: WIDTHS,
            norm_mean: 0.2,
            norm_std: 0.2,
            seg_classes: vec!["background".into(), "b_line".into(), "consolidation".into()],
            aggregation: "mean_probability".into(),
            training_data: "none".into(),
            licenses: "none".into(),
            cv_metrics: "{}".into(),
            tensors_sha256: String::new(),
        },
        tensors,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pleura::model::init_threads();
    println!("| input | MMAC/frame | f32 median ms | f32 p99 ms | q8 median ms | q8 p99 ms |");
    println!("|---|---|---|---|---|---|");
    for size in [96, 128, 160] {
        let mut row = format!(
            "| {size}² | {:.0} |",
            macs_per_frame(size, 1, WIDTHS, CLASSES) as f64 / 1e6
        );
        for precision in [Precision::F32, Precision::Quantized] {
            let net = LusNet::from_file(random_model(size)?, precision)?;
            let frame: Vec<u8> = (0..size * size).map(|i| (i * 31 % 251) as u8).collect();
            net.predict(&[&frame])?; // warm-up
            let mut times: Vec<f64> = (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    let _ = net.predict(&[&frame]);
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            row += &format!(
                " {:.1} | {:.1} |",
                percentile(&times, 0.5),
                percentile(&times, 0.99)
            );
        }
        println!("{row}");
    }
    Ok(())
}
