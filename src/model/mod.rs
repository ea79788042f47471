//! The LusNet model: what a model file says ([`ModelMeta`]), how it is
//! read ([`ModelFile`], GGUF), and the network that scores frames
//! ([`LusNet`]).
//!
//! ```text
//! ModelFile ──► LusNet ─┬─ candle path (lusnet.rs): f32, or candle's q8
//! (gguf.rs)   (here)    └─ integer path (int8_lusnet.rs, int8.rs): int8
//!                ▲
//!     arch.rs: the layer shapes, sides and cost both paths are built from
//! ```
//!
//! [`LusNet`] owns the parts every path shares (the model's description,
//! the input normalization, the v3 heads and the segmentation gate) and
//! hands the layers to one of two networks: the candle one, whose forward
//! pass reads like the paper, and the integer one, which runs the same
//! layers on Pleura's own kernels. The model knows frames only as
//! normalized square tensors. It never sees a capture device, a clip or a
//! screen.

pub mod arch;
mod conv;
mod error;
mod gguf;
pub mod heads;
pub mod import;
mod int8;
mod int8_lusnet;
mod lusnet;
mod meta;
mod threads;

pub use error::{ModelError, candle_message};
pub use gguf::{MAX_MODEL_BYTES, ModelFile};
pub use meta::{
    ATTENTION_ORDINAL, INPUT_SIZES, MAX_HISTORY_STEP, MAX_WIDTH, MEAN_PROBABILITY, ModelMeta,
    NORM_STD_RANGE, SEG_CLASSES, check_input_size,
};
pub use threads::{THREADS, ThreadVarError, check_thread_vars, init_threads, set_threads, threads};

use crate::spec::{Named, SpecError};
use candle_core::{D, Device, Tensor};
use heads::{HeadOutputs, Heads};
use int8_lusnet::{Frame, Int8LusNet};
use lusnet::CandleLusNet;
use std::path::Path;

/// The only architecture this build can run.
pub const ARCHITECTURE: &str = "lusnet";
/// The newest LusNet layout this build understands.
pub const LUSNET_VERSION: u32 = 1;
/// Number of Soldati score classes (0–3).
pub const SCORE_CLASSES: usize = 4;

/// How the network's matrix products are computed (`f32`, `q8` or `int8`
/// on the command line and in board profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Precision {
    /// Weights dequantized once to f32; f32 activations and products.
    #[serde(rename = "f32")]
    F32,
    /// Weights kept as stored (Q8_0) and multiplied with candle's `QMatMul`,
    /// which quantizes activations to 8 bits on the fly.
    #[serde(rename = "q8")]
    Quantized,
    /// Pleura's integer convolutions (`int8.rs`, `int8_lusnet.rs`): weights
    /// per output channel in i8, activations in 7 bits scaled per tensor and
    /// frame, i32 sums, with bias and ReLU fused into the conversion back.
    /// The stem (whose input, the normalized frame, is signed) and the two
    /// heads stay f32.
    #[serde(rename = "int8")]
    Int8,
}

impl Precision {
    /// The name the command line and board profiles use.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Quantized => "q8",
            Precision::Int8 => "int8",
        }
    }
}

impl Named for Precision {
    const WHAT: &'static str = "precision";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("f32", Precision::F32),
        ("int8", Precision::Int8),
        ("q8", Precision::Quantized),
        ("i8", Precision::Int8),
        ("q8_0", Precision::Quantized),
        ("quantized", Precision::Quantized),
    ];
}

impl std::str::FromStr for Precision {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

/// The raw outputs of one forward pass over a batch of N frames.
#[derive(Debug)]
pub struct ModelOutput {
    /// `[N, 4]` score logits.
    pub score_logits: Tensor,
    /// `[N, S/4, S/4, classes]` segmentation logits, NHWC.
    pub seg_logits: Tensor,
    /// `[N, 2·w3]` frame embeddings: what the score and v3 heads read.
    pub embedding: Tensor,
}

/// What the network says about one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePrediction {
    /// Probability of each Soldati score 0–3.
    pub score_probs: [f32; SCORE_CLASSES],
    /// Side of the segmentation map.
    pub seg_size: usize,
    /// Most likely class of each segmentation cell, row-major (gated by
    /// the findings when the model has the v3 heads).
    pub seg_labels: Vec<u8>,
    /// The v3 heads' outputs, for a model that has them.
    pub heads: Option<HeadOutputs>,
}

impl FramePrediction {
    /// The most likely score.
    pub fn score(&self) -> u8 {
        argmax(&self.score_probs) as u8
    }

    /// Fraction of the frame labelled `class`.
    pub fn class_fraction(&self, class: usize) -> f32 {
        let hits = self
            .seg_labels
            .iter()
            .filter(|&&c| c as usize == class)
            .count();
        hits as f32 / self.seg_labels.len().max(1) as f32
    }
}

/// The network, ready to run on the path its precision chose.
#[derive(Debug)]
pub struct LusNet {
    meta: ModelMeta,
    precision: Precision,
    layers: Layers,
    heads: Option<Heads>,
    /// The segmentation classes the findings gate: `b_line`, `consolidation`.
    gated_classes: [u8; 2],
    device: Device,
}

/// The network's layers, as one precision runs them.
#[derive(Debug)]
enum Layers {
    /// Candle tensors: f32 products, or candle's quantized ones.
    Candle(CandleLusNet),
    /// Pleura's integer path, with its buffers.
    Int8(Box<Int8LusNet>),
}

impl LusNet {
    /// Loads a GGUF model file and prepares it for `precision`.
    pub fn load(path: &Path, precision: Precision) -> Result<Self, ModelError> {
        Self::from_file(ModelFile::read(path)?, precision)
    }

    /// Builds the network from a model file already in memory.
    pub fn from_file(file: ModelFile, precision: Precision) -> Result<Self, ModelError> {
        let layers = match precision {
            Precision::Int8 => Layers::Int8(Box::new(Int8LusNet::new(&file)?)),
            Precision::F32 | Precision::Quantized => {
                Layers::Candle(CandleLusNet::new(&file, precision)?)
            }
        };
        let heads = match heads::in_file(&file) {
            true => Some(Heads::read(&file, 2 * file.meta.widths[3])?),
            false => None,
        };
        let class = |name| file.meta.seg_class(name).unwrap_or(0) as u8;
        let gated_classes = [class("b_line"), class("consolidation")];
        Ok(Self {
            meta: file.meta,
            precision,
            layers,
            heads,
            gated_classes,
            device: Device::Cpu,
        })
    }

    /// The inference path it was built for.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model's description.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The v3 heads, for a model that has them.
    pub fn heads(&self) -> Option<&Heads> {
        self.heads.as_ref()
    }

    /// Turns preprocessed inputs ([`ModelMeta::input_len`] bytes each: `C`
    /// planes of `S×S`, oldest first) into the normalized `[N, S, S, C]` input.
    pub fn input_tensor(&self, frames: &[&[u8]]) -> Result<Tensor, ModelError> {
        let (s, c) = (self.meta.input_size, self.meta.input_channels());
        let (mean, std) = (self.meta.norm_mean, self.meta.norm_std);
        let mut data = Vec::with_capacity(frames.len() * s * s * c);
        for frame in frames {
            if frame.len() != self.meta.input_len() {
                return Err(frame_size_error(frame.len(), &self.meta));
            }
            let (planes, plane) = (frame.chunks_exact(s * s), s * s);
            let normalize = |p: u8| (f32::from(p) / 255.0 - mean) / std;
            match c {
                1 => data.extend(frame.iter().map(|&p| normalize(p))),
                _ => data.extend(
                    (0..plane).flat_map(|i| planes.clone().map(move |plane| normalize(plane[i]))),
                ),
            }
        }
        Ok(Tensor::from_vec(
            data,
            (frames.len(), s, s, c),
            &self.device,
        )?)
    }

    /// The forward pass on a normalized `[N, S, S, C]` batch.
    pub fn forward(&self, x: &Tensor) -> Result<ModelOutput, ModelError> {
        let (s, c) = (self.meta.input_size, self.meta.input_channels());
        let (_, h, w, channels) = x.dims4()?;
        if (h, w, channels) != (s, s, c) {
            return Err(ModelError::Input(format!(
                "input is {h}×{w}×{channels}, the model takes {s}×{s}×{c}"
            )));
        }
        match &self.layers {
            Layers::Candle(net) => net.forward(x),
            Layers::Int8(net) => net.forward(x, &self.meta),
        }
    }

    /// Runs preprocessed inputs ([`ModelMeta::input_len`] bytes each) through
    /// the network.
    pub fn predict(&self, frames: &[&[u8]]) -> Result<Vec<FramePrediction>, ModelError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        match &self.layers {
            Layers::Candle(_) => self.predict_batch(frames),
            Layers::Int8(net) => frames
                .iter()
                .map(|frame| self.predict_int8(net, frame))
                .collect(),
        }
    }

    /// The candle path: the whole batch in one forward pass.
    fn predict_batch(&self, frames: &[&[u8]]) -> Result<Vec<FramePrediction>, ModelError> {
        let out = self.forward(&self.input_tensor(frames)?)?;
        let probs = candle_nn::ops::softmax(&out.score_logits, D::Minus1)?.to_vec2::<f32>()?;
        let embedding = out.embedding.to_vec2::<f32>()?;
        let labels = out.seg_logits.argmax(D::Minus1)?;
        let (n, side, _) = labels.dims3()?;
        let labels = labels.flatten_all()?.to_vec1::<u32>()?;
        Ok((0..n)
            .map(|i| {
                let mut score_probs = [0f32; SCORE_CLASSES];
                score_probs.copy_from_slice(&probs[i][..SCORE_CLASSES]);
                let cells = &labels[i * side * side..(i + 1) * side * side];
                let seg_labels = cells.iter().map(|&c| c as u8).collect();
                self.prediction(score_probs, side, seg_labels, &embedding[i])
            })
            .collect())
    }

    /// The integer path: one frame straight from its pixels.
    fn predict_int8(&self, net: &Int8LusNet, frame: &[u8]) -> Result<FramePrediction, ModelError> {
        if frame.len() != self.meta.input_len() {
            return Err(frame_size_error(frame.len(), &self.meta));
        }
        let (side, classes) = (self.meta.input_size / 4, self.meta.seg_classes.len());
        Ok(net.run(Frame::Pixels(frame), |score, seg, pooled| {
            let labels = seg.chunks_exact(classes).map(|l| argmax(l) as u8);
            self.prediction(softmax(score), side, labels.collect(), pooled)
        }))
    }

    /// One frame's prediction from the network's outputs: with the v3
    /// heads run on its embedding and its segmentation gated by them.
    fn prediction(
        &self,
        score_probs: [f32; SCORE_CLASSES],
        seg_size: usize,
        mut seg_labels: Vec<u8>,
        embedding: &[f32],
    ) -> FramePrediction {
        let heads = self.heads.as_ref().map(|h| h.run(embedding));
        if let Some(outputs) = &heads {
            let [b_line, consolidation] = self.gated_classes;
            outputs.gate(&mut seg_labels, b_line, consolidation);
        }
        FramePrediction {
            score_probs,
            seg_size,
            seg_labels,
            heads,
        }
    }
}

/// Probabilities from logits.
pub(crate) fn softmax(logits: &[f32; SCORE_CLASSES]) -> [f32; SCORE_CLASSES] {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exp = logits.map(|v| (v - max).exp());
    let total: f32 = exp.iter().sum();
    exp.map(|e| e / total)
}

/// The error for a frame that is not `side × side`.
fn frame_size_error(pixels: usize, meta: &ModelMeta) -> ModelError {
    let side = meta.input_size;
    ModelError::Input(match meta.input_channels() {
        1 => format!("frame has {pixels} pixels, the model takes {side}×{side}"),
        c => format!("input has {pixels} pixels, the model takes {c} frames of {side}×{side}"),
    })
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.1, 0.4, 0.4, 0.1]), 1);
    }
}
