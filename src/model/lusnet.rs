//! LusNet: a small U-Net-shaped network that reads one lung-ultrasound
//! frame (with two earlier ones for a 2.5D model) and answers two
//! questions at once. Its layer shapes and cost are in [`super::arch`].
//!
//! ```text
//! frame S×S×C (C = 1, or 3: frames t − 2Δ, t − Δ, t)
//!  └ stem (s2) ─ stem2 ──────────────── S/2 × w0
//!     └ down1 (s2) ─ block1 ─────────── S/4 × w1 ──────────────┐ skip
//!        └ down2 (s2) ─ block2 ──────── S/8 × w2 ──────┐ skip  │
//!           └ down3 (s2) ─ block3 ───── S/16 × w3      │       │
//!              ├ [mean ‖ max] pool ─ score ─► 4 logits (Soldati 0–3)
//!              └ up ×2 ‖ ──────────────────► up2 ─ S/8 │       │
//!                                  up ×2 ‖ ─────────────────► up1 ─ S/4
//!                                                        seg (1×1) ─► classes
//! ```
//!
//! Every 3×3 convolution is followed by a ReLU (batch norm is folded into
//! the weights at export). The score head pools both the mean, for diffuse
//! patterns such as white lung, and the maximum, for focal ones such as a
//! single consolidation. The segmentation head works at a quarter of the
//! input resolution.
//!
//! A v3 file adds the finding and clip heads on the same pooled embedding
//! ([`super::heads`]); a frame's prediction then carries their outputs, and
//! its segmentation is gated by its findings.

use super::arch::{conv_specs, score_shape};
use super::conv::{Conv2d, Linear};
use super::gguf::ModelFile;
use super::heads::{HeadOutputs, Heads};
use super::int8_lusnet::{Frame, Int8LusNet};
use super::{ModelError, ModelMeta, Precision, SCORE_CLASSES};
use candle_core::{D, Device, Tensor};
use std::path::Path;

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

/// The network, ready to run.
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
    Candle { convs: Vec<Conv2d>, score: Linear },
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
        let layers = if precision == Precision::Int8 {
            Layers::Int8(Box::new(Int8LusNet::new(&file)?))
        } else {
            let meta = &file.meta;
            let convs = conv_specs(meta.input_channels(), meta.widths, meta.seg_classes.len())
                .into_iter()
                .map(|(name, spec)| {
                    let (weight, bias) = file.layer(name, spec.weight_shape())?;
                    Conv2d::new(spec, weight, bias, precision)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (weight, bias) = file.layer("score", score_shape(file.meta.widths))?;
            let score = Linear::new(weight, bias, precision)?;
            Layers::Candle { convs, score }
        };
        let heads = match super::heads::in_file(&file) {
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
        let (convs, score) = match &self.layers {
            Layers::Candle { convs, score } => (convs, score),
            Layers::Int8(net) => return self.forward_int8(net, x),
        };
        let [
            stem,
            stem2,
            down1,
            block1,
            down2,
            block2,
            down3,
            block3,
            up2,
            up1,
            seg,
        ] = convs.as_slice()
        else {
            return Err(ModelError::Invariant(
                "model has the wrong number of layers".into(),
            ));
        };
        let s2 = stem2.forward(&stem.forward(x)?)?;
        let s4 = block1.forward(&down1.forward(&s2)?)?;
        let s8 = block2.forward(&down2.forward(&s4)?)?;
        let s16 = block3.forward(&down3.forward(&s8)?)?;

        let pooled = Tensor::cat(&[s16.mean((1, 2))?, s16.max(1)?.max(1)?], 1)?;
        let score_logits = score.forward(&pooled)?;

        let d8 = up2.forward(&Tensor::cat(&[upsample2(&s16)?, s8], 3)?)?;
        let d4 = up1.forward(&Tensor::cat(&[upsample2(&d8)?, s4], 3)?)?;
        let seg_logits = seg.forward(&d4)?;
        Ok(ModelOutput {
            score_logits,
            seg_logits,
            embedding: pooled,
        })
    }

    /// [`LusNet::forward`] on the integer path, frame by frame.
    fn forward_int8(&self, net: &Int8LusNet, x: &Tensor) -> Result<ModelOutput, ModelError> {
        let (n, s, _, c) = x.dims4()?;
        let side = s / 4;
        let classes = self.meta.seg_classes.len();
        let (mut score, mut seg, mut embedding) = (Vec::new(), Vec::new(), Vec::new());
        for frame in x.flatten_all()?.to_vec1::<f32>()?.chunks_exact(s * s * c) {
            net.run(
                Frame::Normalized(frame),
                |score_logits, seg_logits, pooled| {
                    score.extend_from_slice(score_logits);
                    seg.extend_from_slice(seg_logits);
                    embedding.extend_from_slice(pooled);
                },
            );
        }
        let dim = 2 * self.meta.widths[3];
        Ok(ModelOutput {
            score_logits: Tensor::from_vec(score, (n, SCORE_CLASSES), &self.device)?,
            seg_logits: Tensor::from_vec(seg, (n, side, side, classes), &self.device)?,
            embedding: Tensor::from_vec(embedding, (n, dim), &self.device)?,
        })
    }

    /// Runs preprocessed inputs ([`ModelMeta::input_len`] bytes each) through
    /// the network.
    pub fn predict(&self, frames: &[&[u8]]) -> Result<Vec<FramePrediction>, ModelError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let side = self.meta.input_size / 4;
        if let Layers::Int8(net) = &self.layers {
            return frames
                .iter()
                .map(|frame| match frame.len() == self.meta.input_len() {
                    true => Ok(net.run(Frame::Pixels(frame), |score, seg, pooled| {
                        let classes = self.meta.seg_classes.len();
                        let labels = seg.chunks_exact(classes).map(|l| argmax(l) as u8);
                        self.prediction(softmax(score), side, labels.collect(), pooled)
                    })),
                    false => Err(frame_size_error(frame.len(), &self.meta)),
                })
                .collect();
        }
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

    /// The v3 heads, for a model that has them.
    pub fn heads(&self) -> Option<&Heads> {
        self.heads.as_ref()
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

/// Nearest-neighbour ×2 upsampling of an NHWC tensor.
fn upsample2(x: &Tensor) -> candle_core::Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    x.reshape((n, h, 1, w, 1, c))?
        .broadcast_as((n, h, 2, w, 2, c))?
        .reshape((n, 2 * h, 2 * w, c))
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
    fn upsampling_repeats_each_pixel_in_a_2x2_block() -> candle_core::Result<()> {
        let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?.reshape((1, 2, 2, 1))?;
        let y = upsample2(&x)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(
            y,
            vec![
                1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
            ]
        );
        Ok(())
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.1, 0.4, 0.4, 0.1]), 1);
    }
}
