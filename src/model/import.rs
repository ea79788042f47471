//! Turning the trainer's weights (safetensors, PyTorch layout) into a
//! LusNet model file (GGUF, Pleura's layout).
//!
//! The trainer folds batch norm into the convolutions and writes, for each
//! layer `L`, `L.weight` as `[out, in, k, k]` and `L.bias` as `[out]`,
//! plus the model description as safetensors string metadata (`input_size`,
//! `widths` and `seg_classes` comma-separated, `norm_mean`, `norm_std`,
//! `aggregation`, `training_data`, `licenses`, `cv_metrics`).
//! Import reorders each kernel to `(ky, kx, in)`, pads K to the Q8_0 block,
//! and quantizes. A v3 file (with `findings.weight`) also carries the
//! finding and clip heads ([`super::heads`]), kept in f32: they are small
//! and run once per frame on the embedding.

use super::arch::{conv_specs, padded_k, score_shape};
use super::gguf::ModelFile;
use super::heads::{CLIP_ATTENTION, FINDINGS};
use super::{ARCHITECTURE, LUSNET_VERSION, ModelError, ModelMeta};
use crate::spec::{Named, SpecError};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// How weights are stored in the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// 8-bit blocks of 32 with one f16 scale (what ships).
    Q8_0,
    /// Full precision (parity fixtures).
    F32,
}

impl Named for Quantization {
    const WHAT: &'static str = "quantization";
    const NAMES: &'static [(&'static str, Self)] = &[("q8_0", Self::Q8_0), ("f32", Self::F32)];
}

impl std::str::FromStr for Quantization {
    type Err = SpecError;
    /// A name of [`Named::NAMES`], in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(&s.to_ascii_lowercase())
    }
}

/// Reads trainer weights and converts them into a model file in memory.
pub fn import_safetensors(
    path: &Path,
    quantization: Quantization,
) -> Result<ModelFile, ModelError> {
    let corrupt = |reason: String| ModelError::Corrupt {
        path: path.to_path_buf(),
        format: "safetensors",
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| ModelError::opening(path, e))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let text = header.metadata().clone().unwrap_or_default();
    let meta = meta_from_strings(path, &text)?;
    meta.check(path)?;
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| corrupt(e.to_string()))?;
    let tensor_error = |name: &str, reason: String| ModelError::Tensor {
        path: path.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    // A tensor by name, as f32, with exactly the expected shape.
    let get = |name: &str, expected: &[usize]| -> Result<Tensor, ModelError> {
        let t = tensors
            .get(name)
            .ok_or_else(|| tensor_error(name, "missing".into()))?;
        if t.dims() != expected {
            return Err(tensor_error(
                name,
                format!("shape {:?}, expected {expected:?}", t.dims()),
            ));
        }
        Ok(t.to_dtype(DType::F32)?)
    };

    let mut out = BTreeMap::new();
    let mut store = |name: String, t: &Tensor, q: Quantization| -> Result<(), ModelError> {
        let dtype = match q {
            Quantization::Q8_0 => GgmlDType::Q8_0,
            Quantization::F32 => GgmlDType::F32,
        };
        out.insert(name, Arc::new(QTensor::quantize(t, dtype)?));
        Ok(())
    };
    for (layer, spec) in conv_specs(meta.input_channels(), meta.widths, meta.seg_classes.len()) {
        let name = format!("{layer}.weight");
        let w = get(
            &name,
            &[
                spec.out_channels,
                spec.in_channels,
                spec.kernel,
                spec.kernel,
            ],
        )?;
        let k = spec.kernel * spec.kernel * spec.in_channels;
        let w = w.permute((0, 2, 3, 1))?.reshape((spec.out_channels, k))?;
        let w = w.pad_with_zeros(1, 0, padded_k(k) - k)?;
        store(name, &w, quantization)?;
        store(
            format!("{layer}.bias"),
            &get(&format!("{layer}.bias"), &[spec.out_channels])?,
            Quantization::F32,
        )?;
    }
    let (out_features, in_features) = score_shape(meta.widths);
    let w = get("score.weight", &[out_features, in_features])?;
    store("score.weight".into(), &w, quantization)?;
    store(
        "score.bias".into(),
        &get("score.bias", &[out_features])?,
        Quantization::F32,
    )?;
    if tensors.contains_key("findings.weight") {
        let dim = in_features;
        let heads: [(&str, Vec<usize>); 8] = [
            ("findings.weight", vec![FINDINGS.len(), dim]),
            ("findings.bias", vec![FINDINGS.len()]),
            ("clip.attn_v.weight", vec![CLIP_ATTENTION, dim]),
            ("clip.attn_v.bias", vec![CLIP_ATTENTION]),
            ("clip.attn_w.weight", vec![1, CLIP_ATTENTION]),
            ("clip.attn_w.bias", vec![1]),
            ("clip.ordinal.weight", vec![1, dim]),
            ("clip.cutpoints", vec![3]),
        ];
        for (name, shape) in heads {
            store(name.into(), &get(name, &shape)?, Quantization::F32)?;
        }
    }
    Ok(ModelFile {
        path: path.to_path_buf(),
        meta,
        tensors: out,
    })
}

fn meta_from_strings(path: &Path, text: &HashMap<String, String>) -> Result<ModelMeta, ModelError> {
    let missing = |key: &str| ModelError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
    };
    let get = |k: &str| text.get(k).cloned().ok_or_else(|| missing(k));
    let parse_list = |k: &str| -> Result<Vec<usize>, ModelError> {
        get(k)?
            .split(',')
            .map(|v| v.trim().parse().map_err(|_| missing(k)))
            .collect()
    };
    let architecture = get("architecture").unwrap_or_else(|_| ARCHITECTURE.to_string());
    if architecture != ARCHITECTURE {
        return Err(ModelError::WrongArchitecture {
            path: path.to_path_buf(),
            found: architecture,
        });
    }
    let widths: [usize; 4] = parse_list("widths")?
        .try_into()
        .map_err(|_| missing("widths"))?;
    Ok(ModelMeta {
        architecture,
        version: LUSNET_VERSION,
        input_size: get("input_size")?
            .parse()
            .map_err(|_| missing("input_size"))?,
        history_step: match text.get("history_step") {
            Some(step) => step.parse().map_err(|_| missing("history_step"))?,
            None => 0,
        },
        widths,
        norm_mean: get("norm_mean")?
            .parse()
            .map_err(|_| missing("norm_mean"))?,
        norm_std: get("norm_std")?.parse().map_err(|_| missing("norm_std"))?,
        seg_classes: get("seg_classes")?
            .split(',')
            .map(|c| c.trim().to_string())
            .collect(),
        aggregation: get("aggregation")?,
        training_data: get("training_data")?,
        licenses: get("licenses")?,
        cv_metrics: get("cv_metrics").unwrap_or_else(|_| "{}".into()),
        tensors_sha256: String::new(),
    })
}
