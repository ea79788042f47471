//! LusNet on the integer path: the forward pass of [`super::lusnet`],
//! layer for layer, over buffers allocated once when the model loads.
//!
//! Every 3×3 convolution after the stem is a `u7 × i8 → i32` product
//! ([`super::int8`]):
//!
//! 1. The layer's input is quantized with one scale, from its maximum, into
//!    a copy padded with one pixel of zeros. Inputs follow a ReLU, so they
//!    are never negative and 0 stays 0. Scales are dynamic, per frame and
//!    tensor: there is no calibration data to go stale.
//! 2. The 3×3 neighbourhoods of a few output pixels at a time are gathered
//!    into a panel small enough to stay in the L1 cache, and multiplied with
//!    the weights. The image is never unfolded whole (no im2col).
//! 3. The i32 sums become f32 with the bias and ReLU fused.
//!
//! Skip connections meet by upsampling and concatenating straight into the
//! next layer's quantized input, with one scale for both parts.
//!
//! The stem (its input, the normalized frame, is signed), the 1×1
//! segmentation head and the score head stay f32: together under 1 % of
//! the work. A frame allocates nothing but the prediction it returns.

use super::conv::ConvSpec;
use super::gguf::ModelFile;
use super::int8::{Int8Weights, Kernel, activation_scale, quantize_activation, requantize};
use super::lusnet::{FramePrediction, argmax, conv_specs, score_shape};
use super::{ModelError, ModelMeta, SCORE_CLASSES};
use std::cell::RefCell;
use std::sync::Mutex;

/// Bytes of a gathered panel: a share of a 32 KB L1 data cache.
const PANEL_BYTES: usize = 16 * 1024;
/// Output pixels per thread below which a layer is not split.
const MIN_ROWS_PER_THREAD: usize = 32;

thread_local! {
    /// Each thread's panel, grown to the largest layer once.
    static PANEL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// An f32 feature map, `side × side × channels`, row-major (NHWC, N = 1).
#[derive(Debug)]
struct FeatureMap {
    data: Vec<f32>,
    side: usize,
    channels: usize,
}

impl FeatureMap {
    fn new(side: usize, channels: usize) -> Self {
        Self {
            data: vec![0.0; side * side * channels],
            side,
            channels,
        }
    }

    fn max(&self) -> f32 {
        self.data.iter().fold(0f32, |m, &v| m.max(v))
    }
}

/// A convolution's input in 0..=127 with its scale, padded by one zero
/// pixel on every side.
#[derive(Debug)]
struct QuantizedInput {
    data: Vec<u8>,
    side: usize,
    channels: usize,
    scale: f32,
}

impl QuantizedInput {
    /// Room for any input up to `len` padded bytes.
    fn with_capacity(len: usize) -> Self {
        Self {
            data: vec![0; len],
            side: 0,
            channels: 0,
            scale: 1.0,
        }
    }

    /// Quantizes the channel-wise concatenation of `parts`, each map
    /// upsampled (nearest) by its factor to `side`, with one scale.
    fn fill(&mut self, side: usize, parts: &[(&FeatureMap, usize)]) {
        let channels: usize = parts.iter().map(|(map, _)| map.channels).sum();
        let max = parts.iter().map(|(map, _)| map.max()).fold(0f32, f32::max);
        self.scale = activation_scale(max);
        self.side = side;
        self.channels = channels;
        let inverse = 1.0 / self.scale;
        let row_len = (side + 2) * channels;
        let data = &mut self.data[..(side + 2) * row_len];
        data[..row_len].fill(0);
        data[(side + 1) * row_len..].fill(0);
        for (y, row) in data[row_len..(side + 1) * row_len]
            .chunks_exact_mut(row_len)
            .enumerate()
        {
            row[..channels].fill(0);
            row[(side + 1) * channels..].fill(0);
            for (x, pixel) in row[channels..(side + 1) * channels]
                .chunks_exact_mut(channels)
                .enumerate()
            {
                let mut at = 0;
                for (map, up) in parts {
                    let src = ((y / up) * map.side + x / up) * map.channels;
                    let values = &map.data[src..src + map.channels];
                    for (q, &v) in pixel[at..at + map.channels].iter_mut().zip(values) {
                        *q = quantize_activation(v, inverse);
                    }
                    at += map.channels;
                }
            }
        }
    }

    /// Copies the 3×3 neighbourhood of output pixel `index` (of a
    /// `out_side`-wide output at `stride`) into `row`, `(ky, kx, c)` order,
    /// zeros after.
    fn gather(&self, stride: usize, out_side: usize, index: usize, row: &mut [u8]) {
        let (oy, ox) = (index / out_side, index % out_side);
        let run = 3 * self.channels;
        let row_len = (self.side + 2) * self.channels;
        for ky in 0..3 {
            let src = (oy * stride + ky) * row_len + ox * stride * self.channels;
            row[ky * run..(ky + 1) * run].copy_from_slice(&self.data[src..src + run]);
        }
        row[3 * run..].fill(0);
    }
}

/// A 3×3 convolution with ReLU on the integer path.
#[derive(Debug)]
struct Int8Conv {
    spec: ConvSpec,
    weights: Int8Weights,
    bias: Vec<f32>,
}

impl Int8Conv {
    /// Side of the output for an input of `side`.
    fn out_side(&self, side: usize) -> usize {
        (side - 1) / self.spec.stride + 1
    }

    /// Quantizes `parts` (see [`QuantizedInput::fill`]) into `input`, then
    /// runs the layer into `out` on up to `threads` threads; `sums` is scratch.
    fn run(
        &self,
        parts: &[(&FeatureMap, usize)],
        input: &mut QuantizedInput,
        sums: &mut [i32],
        out: &mut FeatureMap,
        threads: usize,
    ) {
        let side = parts.first().map_or(0, |(map, up)| map.side * up);
        input.fill(side, parts);
        self.forward(input, sums, out, threads);
    }

    /// `input` through the layer into `out` on up to `threads` threads;
    /// `sums` is scratch.
    fn forward(
        &self,
        input: &QuantizedInput,
        sums: &mut [i32],
        out: &mut FeatureMap,
        threads: usize,
    ) {
        let out_side = self.out_side(input.side);
        let m = out_side * out_side;
        let sums = &mut sums[..m * self.weights.stride()];
        self.product(input, out_side, sums, threads);
        requantize(
            sums,
            &self.weights,
            input.scale,
            &self.bias,
            self.spec.relu,
            &mut out.data,
        );
    }

    /// The i32 sums of every output pixel, split by pixels across threads.
    fn product(&self, input: &QuantizedInput, out_side: usize, sums: &mut [i32], threads: usize) {
        use rayon::prelude::*;
        let stride = self.weights.stride();
        let m = sums.len() / stride;
        let threads = threads.min(m / MIN_ROWS_PER_THREAD).max(1);
        if threads == 1 {
            self.product_rows(input, out_side, 0, sums);
            return;
        }
        let chunk = m.div_ceil(threads);
        sums.par_chunks_mut(chunk * stride)
            .enumerate()
            .for_each(|(i, sums)| self.product_rows(input, out_side, i * chunk, sums));
    }

    /// The sums of the output pixels from `first` on, panel by panel.
    fn product_rows(
        &self,
        input: &QuantizedInput,
        out_side: usize,
        first: usize,
        sums: &mut [i32],
    ) {
        let (k, stride) = (self.weights.k(), self.weights.stride());
        let rows_per_panel = (PANEL_BYTES / k).max(4) / 4 * 4;
        PANEL.with_borrow_mut(|panel| {
            if panel.len() < rows_per_panel * k {
                panel.resize(rows_per_panel * k, 0);
            }
            for (p, sums) in sums.chunks_mut(rows_per_panel * stride).enumerate() {
                let rows = sums.len() / stride;
                let panel = &mut panel[..rows * k];
                for (i, row) in panel.chunks_exact_mut(k).enumerate() {
                    let index = first + p * rows_per_panel + i;
                    input.gather(self.spec.stride, out_side, index, row);
                }
                self.weights.kernel().product(panel, &self.weights, sums);
            }
        });
    }
}

/// The f32 stem: a 3×3 convolution of the one-channel normalized frame.
#[derive(Debug)]
struct Stem {
    /// `[9 taps][out]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    stride: usize,
}

impl Stem {
    /// `frame` (`(side + 2)²`, padded with zeros) into `out`, with ReLU.
    fn forward(&self, frame: &[f32], side: usize, out: &mut FeatureMap) {
        let channels = self.bias.len();
        let padded = side + 2;
        for (index, pixel) in out.data.chunks_exact_mut(channels).enumerate() {
            let (oy, ox) = (index / out.side, index % out.side);
            pixel.copy_from_slice(&self.bias);
            for (tap, w) in self.weights.chunks_exact(channels).enumerate() {
                let v = frame[(oy * self.stride + tap / 3) * padded + ox * self.stride + tap % 3];
                for (y, &w) in pixel.iter_mut().zip(w) {
                    *y += v * w;
                }
            }
            for y in pixel.iter_mut() {
                *y = y.max(0.0);
            }
        }
    }
}

/// A dense f32 layer: `out[j] = bias[j] + Σᵢ weights[j][i] · x[i]`.
#[derive(Debug)]
struct Dense {
    /// `[out][in]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn forward(&self, x: &[f32], out: &mut [f32]) {
        for ((y, w), &b) in out
            .iter_mut()
            .zip(self.weights.chunks_exact(x.len()))
            .zip(&self.bias)
        {
            *y = b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>();
        }
    }
}

/// Every buffer a frame needs.
#[derive(Debug)]
struct Scratch {
    /// The normalized frame, padded by one zero pixel.
    frame: Vec<f32>,
    input: QuantizedInput,
    sums: Vec<i32>,
    /// Stem and down-sampling outputs, at S/2, S/4, S/8, S/16.
    t2: FeatureMap,
    t4: FeatureMap,
    t8: FeatureMap,
    t16: FeatureMap,
    /// Encoder outputs (skip connections).
    s2: FeatureMap,
    s4: FeatureMap,
    s8: FeatureMap,
    s16: FeatureMap,
    /// Decoder outputs.
    d8: FeatureMap,
    d4: FeatureMap,
    pooled: Vec<f32>,
    score_logits: [f32; SCORE_CLASSES],
    /// `[S/4 · S/4][classes]`.
    seg_logits: Vec<f32>,
}

/// LusNet with integer convolutions and its buffers.
#[derive(Debug)]
pub struct Int8LusNet {
    side: usize,
    mean: f32,
    std: f32,
    /// Threads for the products, read once at load ([`crate::model::threads`]).
    threads: usize,
    stem: Stem,
    /// stem2, down1, block1, down2, block2, down3, block3, up2, up1.
    convs: [Int8Conv; 9],
    seg: Dense,
    score: Dense,
    scratch: Mutex<Scratch>,
}

impl Int8LusNet {
    /// Quantizes the model file's weights for the fastest kernel this CPU runs.
    pub fn new(file: &ModelFile) -> Result<Self, ModelError> {
        let meta: &ModelMeta = &file.meta;
        let classes = meta.seg_classes.len();
        let kernel = Kernel::detect();
        let mut stem = None;
        let mut seg = None;
        let mut convs = Vec::new();
        for (name, spec) in conv_specs(meta.widths, classes) {
            let (weight, bias) = file.layer(name, spec.weight_shape())?;
            let w = weight
                .dequantize(&candle_core::Device::Cpu)?
                .to_vec2::<f32>()?;
            let bias = bias.to_vec1::<f32>()?;
            let taps = spec.kernel * spec.kernel * spec.in_channels;
            match name {
                "stem" => {
                    let weights = (0..taps)
                        .flat_map(|tap| w.iter().map(move |row| row[tap]))
                        .collect();
                    stem = Some(Stem {
                        weights,
                        bias,
                        stride: spec.stride,
                    });
                }
                "seg" => {
                    let weights = w.iter().flat_map(|row| row[..taps].to_vec()).collect();
                    seg = Some(Dense { weights, bias });
                }
                _ => {
                    let rows: Vec<f32> = w.iter().flat_map(|row| row[..taps].to_vec()).collect();
                    convs.push(Int8Conv {
                        spec,
                        weights: Int8Weights::quantize(&rows, spec.out_channels, kernel),
                        bias,
                    });
                }
            }
        }
        let (weight, bias) = file.layer("score", score_shape(meta.widths))?;
        let score = Dense {
            weights: weight
                .dequantize(&candle_core::Device::Cpu)?
                .flatten_all()?
                .to_vec1()?,
            bias: bias.to_vec1()?,
        };
        let layers = || ModelError::Input("model has the wrong number of layers".into());
        let convs: [Int8Conv; 9] = convs.try_into().map_err(|_| layers())?;
        let (stem, seg) = (stem.ok_or_else(layers)?, seg.ok_or_else(layers)?);
        let s = meta.input_size;
        if !s.is_multiple_of(16) {
            return Err(ModelError::Input(format!(
                "the int8 path needs an input side divisible by 16, not {s}"
            )));
        }
        let [w0, w1, w2, w3] = meta.widths;
        let inputs = [
            (s / 2, w0),
            (s / 4, w1),
            (s / 8, w2),
            (s / 16, w3),
            (s / 8, w3 + w2),
            (s / 4, w2 + w1),
        ];
        let input_len = inputs
            .iter()
            .map(|&(side, c)| (side + 2) * (side + 2) * c)
            .max()
            .unwrap_or(0);
        let sums_len = convs
            .iter()
            .zip([
                s / 2,
                s / 4,
                s / 4,
                s / 8,
                s / 8,
                s / 16,
                s / 16,
                s / 8,
                s / 4,
            ])
            .map(|(conv, side)| side * side * conv.weights.stride())
            .max()
            .unwrap_or(0);
        let scratch = Scratch {
            frame: vec![0.0; (s + 2) * (s + 2)],
            input: QuantizedInput::with_capacity(input_len),
            sums: vec![0; sums_len],
            t2: FeatureMap::new(s / 2, w0),
            t4: FeatureMap::new(s / 4, w1),
            t8: FeatureMap::new(s / 8, w2),
            t16: FeatureMap::new(s / 16, w3),
            s2: FeatureMap::new(s / 2, w0),
            s4: FeatureMap::new(s / 4, w1),
            s8: FeatureMap::new(s / 8, w2),
            s16: FeatureMap::new(s / 16, w3),
            d8: FeatureMap::new(s / 8, w2),
            d4: FeatureMap::new(s / 4, w1),
            pooled: vec![0.0; 2 * w3],
            score_logits: [0.0; SCORE_CLASSES],
            seg_logits: vec![0.0; (s / 4) * (s / 4) * classes],
        };
        Ok(Self {
            side: s,
            threads: crate::model::threads(),
            mean: meta.norm_mean,
            std: meta.norm_std,
            stem,
            convs,
            seg,
            score,
            scratch: Mutex::new(scratch),
        })
    }

    /// Runs one preprocessed `S×S` frame; `normalized` gives the network's
    /// input, row-major.
    ///
    /// Hands `visit` the score logits and the `[S/4 · S/4][classes]`
    /// segmentation logits while the buffers are held.
    pub fn run<T>(
        &self,
        normalized: impl Iterator<Item = f32>,
        visit: impl FnOnce(&[f32; SCORE_CLASSES], &[f32]) -> T,
    ) -> T {
        // A panic elsewhere cannot leave these buffers half-valid for the
        // next frame: each frame overwrites all of them before reading.
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let x = &mut *guard;
        let (s, threads) = (self.side, self.threads);
        let padded = s + 2;
        for (i, v) in normalized.take(s * s).enumerate() {
            x.frame[(i / s + 1) * padded + i % s + 1] = v;
        }
        let [stem2, down1, block1, down2, block2, down3, block3, up2, up1] = &self.convs;
        self.stem.forward(&x.frame, s, &mut x.t2);
        stem2.run(&[(&x.t2, 1)], &mut x.input, &mut x.sums, &mut x.s2, threads);
        down1.run(&[(&x.s2, 1)], &mut x.input, &mut x.sums, &mut x.t4, threads);
        block1.run(&[(&x.t4, 1)], &mut x.input, &mut x.sums, &mut x.s4, threads);
        down2.run(&[(&x.s4, 1)], &mut x.input, &mut x.sums, &mut x.t8, threads);
        block2.run(&[(&x.t8, 1)], &mut x.input, &mut x.sums, &mut x.s8, threads);
        down3.run(
            &[(&x.s8, 1)],
            &mut x.input,
            &mut x.sums,
            &mut x.t16,
            threads,
        );
        block3.run(
            &[(&x.t16, 1)],
            &mut x.input,
            &mut x.sums,
            &mut x.s16,
            threads,
        );

        pool_mean_max(&x.s16, &mut x.pooled);
        self.score.forward(&x.pooled, &mut x.score_logits);

        up2.run(
            &[(&x.s16, 2), (&x.s8, 1)],
            &mut x.input,
            &mut x.sums,
            &mut x.d8,
            threads,
        );
        up1.run(
            &[(&x.d8, 2), (&x.s4, 1)],
            &mut x.input,
            &mut x.sums,
            &mut x.d4,
            threads,
        );
        let classes = self.seg.bias.len();
        for (pixel, logits) in
            x.d4.data
                .chunks_exact(x.d4.channels)
                .zip(x.seg_logits.chunks_exact_mut(classes))
        {
            self.seg.forward(pixel, logits);
        }
        visit(&x.score_logits, &x.seg_logits)
    }

    /// What the network says about one preprocessed `S×S` frame.
    pub fn predict(&self, frame: &[u8]) -> FramePrediction {
        let (mean, std) = (self.mean, self.std);
        let normalized = frame.iter().map(|&p| (f32::from(p) / 255.0 - mean) / std);
        let classes = self.seg.bias.len();
        self.run(normalized, |score, seg| FramePrediction {
            score_probs: softmax(score),
            seg_size: self.side / 4,
            seg_labels: seg
                .chunks_exact(classes)
                .map(|logits| argmax(logits) as u8)
                .collect(),
        })
    }
}

/// `[mean over pixels ‖ max over pixels]` of each channel.
fn pool_mean_max(map: &FeatureMap, pooled: &mut [f32]) {
    let c = map.channels;
    let (mean, max) = pooled.split_at_mut(c);
    mean.fill(0.0);
    max.fill(f32::NEG_INFINITY);
    for pixel in map.data.chunks_exact(c) {
        for ((m, x), &v) in mean.iter_mut().zip(max.iter_mut()).zip(pixel) {
            *m += v;
            *x = x.max(v);
        }
    }
    let pixels = (map.side * map.side) as f32;
    for m in mean {
        *m /= pixels;
    }
}

/// Probabilities from logits.
fn softmax(logits: &[f32; SCORE_CLASSES]) -> [f32; SCORE_CLASSES] {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exp = logits.map(|v| (v - max).exp());
    let total: f32 = exp.iter().sum();
    exp.map(|e| e / total)
}
