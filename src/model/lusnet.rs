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
use super::{ModelError, ModelFile, ModelOutput, Precision};
use candle_core::Tensor;

/// LusNet's layers as candle tensors.
#[derive(Debug)]
pub(crate) struct CandleLusNet {
    convs: Vec<Conv2d>,
    score: Linear,
}

impl CandleLusNet {
    /// The layers of `file`, for f32 or candle's quantized products.
    pub(crate) fn new(file: &ModelFile, precision: Precision) -> Result<Self, ModelError> {
        let meta = &file.meta;
        let convs = conv_specs(meta.input_channels(), meta.widths, meta.seg_classes.len())
            .into_iter()
            .map(|(name, spec)| {
                let (weight, bias) = file.layer(name, spec.weight_shape())?;
                Conv2d::new(spec, weight, bias, precision)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (weight, bias) = file.layer("score", score_shape(meta.widths))?;
        let score = Linear::new(weight, bias, precision)?;
        Ok(Self { convs, score })
    }

    /// The forward pass on a normalized `[N, S, S, C]` batch.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<ModelOutput, ModelError> {
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
        ] = self.convs.as_slice()
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
        let score_logits = self.score.forward(&pooled)?;

        let d8 = up2.forward(&Tensor::cat(&[upsample2(&s16)?, s8], 3)?)?;
        let d4 = up1.forward(&Tensor::cat(&[upsample2(&d8)?, s4], 3)?)?;
        let seg_logits = seg.forward(&d4)?;
        Ok(ModelOutput {
            score_logits,
            seg_logits,
            embedding: pooled,
        })
    }
}

/// Nearest-neighbour ×2 upsampling of an NHWC tensor.
fn upsample2(x: &Tensor) -> candle_core::Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    x.reshape((n, h, 1, w, 1, c))?
        .broadcast_as((n, h, 2, w, 2, c))?
        .reshape((n, 2 * h, 2 * w, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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
}
