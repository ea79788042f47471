//! `pleura score`, `pleura eval` and `pleura model`: one clip, a labelled
//! dataset, and model files.

use super::print::{ClipLines, print_clip, print_report, progress_line, say};
use super::{DEFAULT_MODEL, ModelArgs, load_model, model_path};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use pleura::eval::dataset::DatasetKind;
use pleura::eval::{evaluate, predict_clip, prepare_clip};
use pleura::model::arch::macs_per_frame;
use pleura::model::heads::{self, Heads};
use pleura::model::import::{Quantization, import_safetensors};
use pleura::model::{LusNet, Precision};
use pleura::scoring::{clip_findings, clip_score, mean_class_fraction};
use std::path::{Path, PathBuf};

/// `pleura model`.
#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Convert trainer weights (safetensors) into a model file (GGUF).
    Import {
        /// Weights written by scripts/train.
        weights: PathBuf,
        /// Weight storage: q8_0 or f32.
        #[arg(long, default_value = "q8_0")]
        quantize: Quantization,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a model file's description.
    Info {
        /// The model file.
        #[arg(default_value = DEFAULT_MODEL)]
        model: PathBuf,
    },
}

/// Runs a `pleura model` command.
pub(crate) fn run(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Import {
            weights,
            quantize,
            output,
        } => {
            let mut file = import_safetensors(&weights, quantize)?;
            file.write(&output)?;
            let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            say!(
                "wrote {} ({:.2} MB, {} tensors, sha256 {})",
                output.display(),
                size as f64 / 1e6,
                file.tensors.len(),
                file.meta.tensors_sha256
            );
            Ok(())
        }
        ModelCommand::Info { model } => {
            let net = LusNet::load(&model, Precision::F32)?;
            let meta = net.meta();
            say!("{}", serde_json::to_string_pretty(meta)?);
            let macs = macs_per_frame(
                meta.input_size,
                meta.input_channels(),
                meta.widths,
                meta.seg_classes.len(),
            ) + net.heads().map_or(0, Heads::macs);
            say!(
                "cost: {:.1} M multiply-accumulates per frame",
                macs as f64 / 1e6
            );
            Ok(())
        }
    }
}

/// `pleura score`: one clip's score, areas and findings.
pub(crate) fn score(clip: &Path, args: &ModelArgs) -> Result<()> {
    let model = load_model(model_path(args), args.precision_or_f32())?;
    let meta = model.meta();
    let prepared = prepare_clip(clip, meta.input_size, None, meta.history_step)?;
    let predictions = predict_clip(&model, &prepared)?;
    let (Some(clip_result), Some(roi)) = (clip_score(&predictions), prepared.roi) else {
        bail!(
            "{}: no frame can be scored: {}",
            clip.display(),
            prepared.rejections()
        );
    };
    let areas = meta.seg_classes.iter().enumerate().skip(1);
    print_clip(&ClipLines {
        name: &clip.display().to_string(),
        frames: clip_result.frames,
        sector: roi,
        score: (clip_result.score, clip_result.confidence),
        stable: None,
        probs: clip_result.probs,
        areas: areas
            .map(|(i, name)| (name.as_str(), mean_class_fraction(&predictions, i)))
            .collect(),
        findings: clip_findings(&predictions).map_or_else(Default::default, heads::named),
        rejected: prepared.rejections(),
    });
    Ok(())
}

/// `pleura eval`: a model against expert scores on a dataset.
pub(crate) fn eval(
    dataset: DatasetKind,
    dir: &Path,
    args: &ModelArgs,
    json: Option<&Path>,
    max_frames: Option<usize>,
) -> Result<()> {
    let model = load_model(model_path(args), args.precision_or_f32())?;
    let report = evaluate(dataset, dir, &model, max_frames, progress_line)?;
    for s in &report.skipped {
        eprintln!("skipped {}: {}", s.name, s.reason);
    }
    print_report(&report);
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        say!("report written to {}", path.display());
    }
    Ok(())
}
