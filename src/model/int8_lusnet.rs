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
//! 2. The output pixels are taken a panel at a time, small enough for the
//!    L1 cache. The x86 kernels read each pixel's 3×3 window in place in
//!    the padded input (three runs of 3 pixels × channels); the others get
//!    the windows gathered into a panel first. The image is never unfolded
//!    whole (no im2col).
//! 3. Each panel's i32 sums become f32 with the bias and ReLU fused while
//!    they are still in the L1 cache, and the layer's maximum (the next
//!    layer's scale) is kept on the way, so no output is read twice.
//!
//! Skip connections meet by upsampling and concatenating straight into the
//! next layer's quantized input, with one scale for both parts. On several
//! threads, each layer's output pixels (and the rows it quantizes, and the
//! stem's pixels) are split across rayon's pool, and the whole frame runs
//! inside the pool ([`Int8LusNet::run`]).
//!
//! The stem (its input, the normalized frame, is signed), the 1×1
//! segmentation head and the score head stay f32: together under 2 % of
//! the multiply-accumulates. The stem keeps one 16-lane register of
//! weights per tap (AVX-512 where the CPU has it). A frame allocates
//! nothing but the prediction it returns.

use super::arch::{ConvSpec, conv_specs, output_sides, score_shape};
use super::int8::{Int8Weights, Kernel, activation_scale, quantize_activation, requantize};
use super::{ModelError, ModelFile, ModelMeta, ModelOutput, SCORE_CLASSES};
use candle_core::Tensor;
use std::cell::RefCell;
use std::sync::Mutex;

/// Bytes of a gathered panel: a share of a 32 KB L1 data cache.
const PANEL_BYTES: usize = 16 * 1024;
/// Output pixels per thread below which a layer is not split.
const MIN_ROWS_PER_THREAD: usize = 32;
/// Values per thread below which an element-wise pass is not split.
const MIN_VALUES_PER_THREAD: usize = 8 * 1024;

thread_local! {
    /// Each thread's panel buffers, grown to the largest layer once.
    static PANEL: RefCell<Panel> = const { RefCell::new(Panel::new()) };
}

/// A thread's buffers for one panel of output pixels.
#[derive(Debug)]
struct Panel {
    /// Where each pixel's 3×3 window starts in the quantized input.
    starts: Vec<usize>,
    /// The windows gathered, one row of `k` bytes each (kernels that do
    /// not read them in place).
    rows: Vec<u8>,
    /// The i32 sums of the product.
    sums: Vec<i32>,
}

impl Panel {
    const fn new() -> Self {
        Self {
            starts: Vec::new(),
            rows: Vec::new(),
            sums: Vec::new(),
        }
    }

    /// Grows the buffers for `pixels` pixels of `k` bytes and `stride`
    /// sums each.
    fn reserve(&mut self, pixels: usize, k: usize, stride: usize) {
        fn grow<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
            if v.len() < len {
                v.resize(len, T::default());
            }
        }
        grow(&mut self.starts, pixels);
        grow(&mut self.rows, pixels * k);
        grow(&mut self.sums, pixels * stride);
    }
}

/// An f32 feature map, `side × side × channels`, row-major (NHWC, N = 1).
#[derive(Debug)]
struct FeatureMap {
    data: Vec<f32>,
    side: usize,
    channels: usize,
    /// The largest value, 0 for an all-negative map: kept by the layer
    /// that writes the map, so that the next one need not read it twice.
    max: f32,
}

impl FeatureMap {
    fn new(side: usize, channels: usize) -> Self {
        Self {
            data: vec![0.0; side * side * channels],
            side,
            channels,
            max: 0.0,
        }
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
    /// upsampled (nearest) by its factor to `side`, with one scale, its
    /// rows split across up to `threads` threads.
    fn fill(&mut self, side: usize, parts: &[(&FeatureMap, usize)], threads: usize) {
        use rayon::prelude::*;
        let channels: usize = parts.iter().map(|(map, _)| map.channels).sum();
        let max = parts.iter().map(|(map, _)| map.max).fold(0f32, f32::max);
        self.scale = activation_scale(max);
        self.side = side;
        self.channels = channels;
        let inverse = 1.0 / self.scale;
        let row_len = (side + 2) * channels;
        let data = &mut self.data[..(side + 2) * row_len];
        data[..row_len].fill(0);
        data[(side + 1) * row_len..].fill(0);
        let rows = &mut data[row_len..(side + 1) * row_len];
        let threads = threads
            .min(side * side * channels / MIN_VALUES_PER_THREAD)
            .min(side)
            .max(1);
        if threads == 1 {
            quantize_rows(rows, 0, parts, inverse);
        } else {
            let chunk = side.div_ceil(threads);
            rows.par_chunks_mut(chunk * row_len)
                .enumerate()
                .for_each(|(i, rows)| quantize_rows(rows, i * chunk, parts, inverse));
        }
    }

    /// Bytes from one padded row to the next.
    fn row_len(&self) -> usize {
        (self.side + 2) * self.channels
    }

    /// Where the 3×3 window of each output pixel from `first` on starts,
    /// for a convolution at `stride` whose output is `out_side` wide: one
    /// start per element of `starts`.
    fn window_starts(&self, stride: usize, out_side: usize, first: usize, starts: &mut [usize]) {
        let (row_len, step) = (self.row_len(), stride * self.channels);
        let (mut oy, mut ox) = (first / out_side, first % out_side);
        for start in starts {
            *start = oy * stride * row_len + ox * step;
            ox += 1;
            if ox == out_side {
                (oy, ox) = (oy + 1, 0);
            }
        }
    }

    /// Copies the windows at `starts` ([`QuantizedInput::window_starts`])
    /// into the rows of `panel` (`k` bytes each): `(ky, kx, c)` order,
    /// zeros after.
    fn gather(&self, starts: &[usize], k: usize, panel: &mut [u8]) {
        // The copies' length as a constant for the widths of shipped
        // models (16 to 192 channels), so that the compiler can make the
        // shorter ones a few vector moves rather than calls to `memcpy`.
        match 3 * self.channels {
            48 => self.gather_runs(48, starts, k, panel),
            96 => self.gather_runs(96, starts, k, panel),
            192 => self.gather_runs(192, starts, k, panel),
            288 => self.gather_runs(288, starts, k, panel),
            384 => self.gather_runs(384, starts, k, panel),
            576 => self.gather_runs(576, starts, k, panel),
            run => self.gather_runs(run, starts, k, panel),
        }
    }

    /// [`QuantizedInput::gather`] for runs of `run` bytes, inlined into
    /// each arm of its match.
    #[inline(always)]
    fn gather_runs(&self, run: usize, starts: &[usize], k: usize, panel: &mut [u8]) {
        let row_len = self.row_len();
        for (&start, row) in starts.iter().zip(panel.chunks_exact_mut(k)) {
            let (taps, padding) = row.split_at_mut(3 * run);
            for (ky, taps) in taps.chunks_exact_mut(run).enumerate() {
                let src = start + ky * row_len;
                taps.copy_from_slice(&self.data[src..src + run]);
            }
            padding.fill(0);
        }
    }
}

/// Padded input rows from row `first` of the maps on (see
/// [`QuantizedInput::fill`]): plain loops for the compiler to vectorize,
/// built for AVX-512 (of Ice Lake and Zen 4: `multiversion` asks for all
/// of it) and for AVX2 + FMA as well on x86-64 (see [`requantize`]).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2+fma"))]
fn quantize_rows(rows: &mut [u8], first: usize, parts: &[(&FeatureMap, usize)], inverse: f32) {
    let channels: usize = parts.iter().map(|(map, _)| map.channels).sum();
    let side = parts.first().map_or(0, |(map, up)| map.side * up);
    let row_len = (side + 2) * channels;
    for (y, row) in (first..).zip(rows.chunks_exact_mut(row_len)) {
        row[..channels].fill(0);
        row[(side + 1) * channels..].fill(0);
        let pixels = &mut row[channels..(side + 1) * channels];
        if let [(map, 1)] = parts {
            // One map at its own size: the whole row at once.
            let src = y * side * channels;
            quantize_run(&map.data[src..src + side * channels], inverse, pixels);
            continue;
        }
        for (x, pixel) in pixels.chunks_exact_mut(channels).enumerate() {
            let mut at = 0;
            for (map, up) in parts {
                let src = ((y / up) * map.side + x / up) * map.channels;
                let values = &map.data[src..src + map.channels];
                quantize_run(values, inverse, &mut pixel[at..at + map.channels]);
                at += map.channels;
            }
        }
    }
}

/// `values` quantized into `out` (same length) given `1 / scale`.
#[inline(always)]
fn quantize_run(values: &[f32], inverse: f32, out: &mut [u8]) {
    for (q, &v) in out.iter_mut().zip(values) {
        *q = quantize_activation(v, inverse);
    }
}

/// A 3×3 convolution with ReLU on the integer path.
#[derive(Debug)]
struct Int8Conv {
    spec: ConvSpec,
    weights: Int8Weights,
    bias: Vec<f32>,
    /// Whether the kernel reads each pixel's window in place
    /// ([`Kernel::product_windows`]) rather than from a gathered panel.
    in_place: bool,
}

impl Int8Conv {
    /// Side of the output for an input of `side`.
    fn out_side(&self, side: usize) -> usize {
        (side - 1) / self.spec.stride + 1
    }

    /// Quantizes `parts` (see [`QuantizedInput::fill`]) into `input`, then
    /// runs the layer into `out` on up to `threads` threads.
    fn run(
        &self,
        parts: &[(&FeatureMap, usize)],
        input: &mut QuantizedInput,
        out: &mut FeatureMap,
        threads: usize,
    ) {
        let side = parts.first().map_or(0, |(map, up)| map.side * up);
        input.fill(side, parts, threads);
        self.forward(input, out, threads);
    }

    /// `input` through the layer into `out`, its output pixels split across
    /// up to `threads` threads.
    fn forward(&self, input: &QuantizedInput, out: &mut FeatureMap, threads: usize) {
        use rayon::prelude::*;
        let out_side = self.out_side(input.side);
        let m = out_side * out_side;
        let o = self.weights.out();
        let data = &mut out.data[..m * o];
        let threads = threads.min(m / MIN_ROWS_PER_THREAD).max(1);
        out.max = if threads == 1 {
            self.pixels(input, out_side, 0, data)
        } else {
            let chunk = m.div_ceil(threads);
            data.par_chunks_mut(chunk * o)
                .enumerate()
                .map(|(i, data)| self.pixels(input, out_side, i * chunk, data))
                .reduce(|| 0.0, f32::max)
        };
    }

    /// The outputs of the pixels from `first` on, into `out`, panel by
    /// panel: multiplied (the windows read in place, or gathered first),
    /// and turned back into f32 while the panel's sums are still in the L1
    /// cache. Returns their largest value.
    fn pixels(
        &self,
        input: &QuantizedInput,
        out_side: usize,
        first: usize,
        out: &mut [f32],
    ) -> f32 {
        let (k, stride, o) = (self.weights.k(), self.weights.stride(), self.weights.out());
        let kernel = self.weights.kernel();
        let rows_per_panel = (PANEL_BYTES / k).max(4) / 4 * 4;
        let mut max = 0f32;
        PANEL.with_borrow_mut(|panel| {
            let gathered_k = if self.in_place { 0 } else { k };
            panel.reserve(rows_per_panel, gathered_k, stride);
            for (p, out) in out.chunks_mut(rows_per_panel * o).enumerate() {
                let rows = out.len() / o;
                let starts = &mut panel.starts[..rows];
                let sums = &mut panel.sums[..rows * stride];
                let start = first + p * rows_per_panel;
                input.window_starts(self.spec.stride, out_side, start, starts);
                if self.in_place {
                    let (map, run) = (&input.data, 3 * input.channels);
                    kernel.product_windows(map, starts, input.row_len(), run, &self.weights, sums);
                } else {
                    let gathered = &mut panel.rows[..rows * k];
                    input.gather(starts, k, gathered);
                    kernel.product(gathered, &self.weights, sums);
                }
                let panel_max = requantize(
                    sums,
                    &self.weights,
                    input.scale,
                    &self.bias,
                    self.spec.relu,
                    out,
                );
                max = max.max(panel_max);
            }
        });
        max
    }
}

/// Output channels the stem computes together, in registers.
const STEM_LANES: usize = 16;

/// Most input channels the stem takes (a 2.5D input's three frames).
const STEM_MAX_CHANNELS: usize = 3;

/// Most taps of a stem filter: 3×3 of [`STEM_MAX_CHANNELS`].
const STEM_MAX_TAPS: usize = 9 * STEM_MAX_CHANNELS;

/// The f32 stem: a 3×3 convolution of the normalized input (one frame, or
/// a 2.5D input's three).
#[derive(Debug)]
struct Stem {
    /// Per block of [`STEM_LANES`] output channels, the last one padded
    /// with zeros.
    blocks: Vec<StemFilters>,
    channels: usize,
    in_channels: usize,
    stride: usize,
}

/// The stem's filters for one block of [`STEM_LANES`] output channels.
#[derive(Debug, Clone)]
struct StemFilters {
    /// `[taps][lanes]`, taps in the file's `(ky, kx, channel)` order, zeros
    /// after the last.
    weights: [[f32; STEM_LANES]; STEM_MAX_TAPS],
    bias: [f32; STEM_LANES],
}

impl Stem {
    /// From weights `[out][taps ≥ 9 · in_channels]` (the first ones are the
    /// 3×3 kernel).
    fn new(weights: &[Vec<f32>], bias: &[f32], spec: ConvSpec) -> Result<Self, ModelError> {
        if spec.in_channels > STEM_MAX_CHANNELS {
            return Err(ModelError::Invariant(format!(
                "the int8 path's stem takes at most {STEM_MAX_CHANNELS} input channels, not {}",
                spec.in_channels
            )));
        }
        let taps = 9 * spec.in_channels;
        let blocks = weights.len().div_ceil(STEM_LANES);
        let empty = StemFilters {
            weights: [[0.0; STEM_LANES]; STEM_MAX_TAPS],
            bias: [0.0; STEM_LANES],
        };
        let mut packed = vec![empty; blocks];
        for (o, (row, &b)) in weights.iter().zip(bias).enumerate() {
            let filters = &mut packed[o / STEM_LANES];
            let lane = o % STEM_LANES;
            for (tap, &w) in row.iter().take(taps).enumerate() {
                filters.weights[tap][lane] = w;
            }
            filters.bias[lane] = b;
        }
        Ok(Self {
            blocks: packed,
            channels: weights.len(),
            in_channels: spec.in_channels,
            stride: spec.stride,
        })
    }

    /// The padded normalized `frame` (`(side + 2)²` pixels of
    /// `in_channels` values, `side` before padding) into `out`, with ReLU,
    /// its output pixels split across up to `threads` threads.
    fn forward(&self, frame: &[f32], side: usize, out: &mut FeatureMap, threads: usize) {
        use rayon::prelude::*;
        let (out_side, c) = (out.side, self.channels);
        let pixels = out_side * out_side;
        let threads = threads.min(pixels * c / MIN_VALUES_PER_THREAD).max(1);
        out.max = if threads == 1 {
            stem_pixels(self, frame, side, out_side, 0, &mut out.data)
        } else {
            let chunk = pixels.div_ceil(threads);
            out.data
                .par_chunks_mut(chunk * c)
                .enumerate()
                .map(|(i, data)| stem_pixels(self, frame, side, out_side, i * chunk, data))
                .reduce(|| 0.0, f32::max)
        };
    }
}

/// [`Stem::forward`] for the output pixels from `first` on, into `out`;
/// returns their largest value.
fn stem_pixels(
    stem: &Stem,
    frame: &[f32],
    side: usize,
    out_side: usize,
    first: usize,
    out: &mut [f32],
) -> f32 {
    let pixels = StemPixels {
        frame,
        side,
        out_side,
        first,
        stride: stem.stride,
        channels: stem.channels,
    };
    let mut max = 0f32;
    for (block, filters) in stem.blocks.iter().enumerate() {
        let lanes = block * STEM_LANES..stem.channels.min((block + 1) * STEM_LANES);
        let block_max = match stem.in_channels {
            1 => pixels.block::<1, 9>(filters, lanes, out),
            2 => pixels.block::<2, 18>(filters, lanes, out),
            _ => pixels.block::<3, 27>(filters, lanes, out),
        };
        max = max.max(block_max);
    }
    max
}

/// Where [`stem_pixels`] reads and writes.
struct StemPixels<'a> {
    frame: &'a [f32],
    side: usize,
    out_side: usize,
    first: usize,
    stride: usize,
    channels: usize,
}

impl StemPixels<'_> {
    /// The output channels `lanes` (one block of [`STEM_LANES`]) of every
    /// pixel of `out`, for `C` input channels (`TAPS` = 9 · `C`); returns
    /// their largest value. AVX-512 where the CPU has it, else a loop for
    /// the compiler to vectorize.
    fn block<const C: usize, const TAPS: usize>(
        &self,
        filters: &StemFilters,
        lanes: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.block_avx512::<C, TAPS>(filters, lanes, out) };
        }
        stem_block::<C, TAPS>(self, filters, lanes, out)
    }

    /// The top-left input value of output pixel `index`'s 3×3 window.
    #[inline(always)]
    fn corner<const C: usize>(&self, index: usize) -> usize {
        let (oy, ox) = (index / self.out_side, index % self.out_side);
        (oy * self.stride * (self.side + 2) + ox * self.stride) * C
    }

    /// [`StemPixels::block`] with one 16-lane register per tap, kept in
    /// registers across the pixels.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn block_avx512<const C: usize, const TAPS: usize>(
        &self,
        filters: &StemFilters,
        lanes: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> f32 {
        use std::arch::x86_64::*;
        let (zero, mut max) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut weights = [zero; TAPS];
        for (w, tap) in weights.iter_mut().zip(&filters.weights) {
            // SAFETY: a tap holds 16 values.
            *w = unsafe { _mm512_loadu_ps(tap.as_ptr()) };
        }
        // SAFETY: likewise.
        let bias = unsafe { _mm512_loadu_ps(filters.bias.as_ptr()) };
        let (run, row_len) = (3 * C, (self.side + 2) * C);
        let mask: __mmask16 = (1u32 << lanes.len()).wrapping_sub(1) as u16;
        for (index, pixel) in (self.first..).zip(out.chunks_exact_mut(self.channels)) {
            let corner = self.corner::<C>(index);
            // One chain of sums per kernel row, so that three are in flight.
            let mut sums = [bias, zero, zero];
            for (ky, sum) in sums.iter_mut().enumerate() {
                let start = corner + ky * row_len;
                let row = &self.frame[start..start + run];
                for (&v, &w) in row.iter().zip(&weights[ky * run..]) {
                    *sum = _mm512_fmadd_ps(_mm512_set1_ps(v), w, *sum);
                }
            }
            let mut acc = _mm512_add_ps(_mm512_add_ps(sums[0], sums[1]), sums[2]);
            acc = _mm512_max_ps(acc, zero);
            max = _mm512_max_ps(max, acc);
            let part = &mut pixel[lanes.clone()];
            // SAFETY: `mask` covers `part.len()` ≤ 16 values.
            unsafe { _mm512_mask_storeu_ps(part.as_mut_ptr(), mask, acc) };
        }
        _mm512_reduce_max_ps(max)
    }
}

/// [`StemPixels::block`] as plain loops, built for AVX2 + FMA as well on
/// x86-64 (see [`requantize`]).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn stem_block<const C: usize, const TAPS: usize>(
    pixels: &StemPixels<'_>,
    filters: &StemFilters,
    lanes: std::ops::Range<usize>,
    out: &mut [f32],
) -> f32 {
    let run = 3 * C;
    let row_len = (pixels.side + 2) * C;
    let mut lanes_max = [0f32; STEM_LANES];
    for (index, pixel) in (pixels.first..).zip(out.chunks_exact_mut(pixels.channels)) {
        let corner = pixels.corner::<C>(index);
        let mut taps = [0f32; TAPS];
        for (ky, row) in taps.chunks_exact_mut(run).enumerate() {
            let start = corner + ky * row_len;
            row.copy_from_slice(&pixels.frame[start..start + run]);
        }
        let mut acc = filters.bias;
        for (&v, tap) in taps.iter().zip(&filters.weights) {
            for (a, &w) in acc.iter_mut().zip(tap) {
                *a += v * w;
            }
        }
        for (m, a) in lanes_max.iter_mut().zip(acc.iter_mut()) {
            *a = a.max(0.0);
            *m = m.max(*a);
        }
        let part = &mut pixel[lanes.clone()];
        part.copy_from_slice(&acc[..part.len()]);
    }
    lanes_max.iter().fold(0f32, |m, &v| m.max(v))
}

/// A dense f32 layer: `out[j] = bias[j] + Σᵢ weights[j][i] · x[i]`.
#[derive(Debug)]
struct Dense {
    /// `[out][in]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// Each row of `inputs` (`[n][in]`) into the same row of `outputs` (`[n][out]`).
    fn forward(&self, inputs: &[f32], outputs: &mut [f32]) {
        dense_forward(self, inputs, outputs);
    }
}

/// [`Dense::forward`], with dot products in 8 lanes so that they
/// vectorize, built for AVX2 + FMA as well on x86-64 (see [`requantize`]).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn dense_forward(dense: &Dense, inputs: &[f32], outputs: &mut [f32]) {
    let (n_in, n_out) = (dense.weights.len() / dense.bias.len(), dense.bias.len());
    for (x, out) in inputs
        .chunks_exact(n_in)
        .zip(outputs.chunks_exact_mut(n_out))
    {
        for ((y, w), &b) in out
            .iter_mut()
            .zip(dense.weights.chunks_exact(n_in))
            .zip(&dense.bias)
        {
            let mut lanes = [0f32; 8];
            for (x, w) in x.chunks_exact(8).zip(w.chunks_exact(8)) {
                for ((lane, &x), &w) in lanes.iter_mut().zip(x).zip(w) {
                    *lane += x * w;
                }
            }
            let done = n_in / 8 * 8;
            let rest: f32 = x[done..].iter().zip(&w[done..]).map(|(x, w)| x * w).sum();
            *y = b + lanes.iter().sum::<f32>() + rest;
        }
    }
}

/// What a frame's buffers are sized for.
#[derive(Debug, Clone, Copy)]
struct ScratchSize {
    side: usize,
    channels: usize,
    widths: [usize; 4],
    classes: usize,
    /// The largest padded quantized input of any layer.
    input_len: usize,
}

impl ScratchSize {
    /// A frame's buffers, zeroed.
    fn buffers(&self) -> Scratch {
        let (s, [w0, w1, w2, w3]) = (self.side, self.widths);
        Scratch {
            frame: vec![0.0; (s + 2) * (s + 2) * self.channels],
            input: QuantizedInput::with_capacity(self.input_len),
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
            seg_logits: vec![0.0; (s / 4) * (s / 4) * self.classes],
        }
    }
}

/// Every buffer a frame needs.
#[derive(Debug)]
struct Scratch {
    /// The normalized input, padded by one zero pixel: `(S + 2)²` pixels of
    /// `C` channels.
    frame: Vec<f32>,
    input: QuantizedInput,
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

/// An input for [`Int8LusNet::run`]: `C` channels of `S×S`, row-major.
#[derive(Debug, Clone, Copy)]
pub(super) enum Frame<'a> {
    /// Preprocessed pixels, normalized as the model file says: `C` planes,
    /// oldest first.
    Pixels(&'a [u8]),
    /// Already normalized, channels interleaved (`[S, S, C]`).
    Normalized(&'a [f32]),
}

/// LusNet with integer convolutions and its buffers.
#[derive(Debug)]
pub(super) struct Int8LusNet {
    side: usize,
    /// Input channels: 1, or 3 for a 2.5D model.
    channels: usize,
    /// The network's input for each pixel value.
    normalized: [f32; 256],
    /// Threads for the products, read once at load ([`crate::model::threads`]).
    threads: usize,
    stem: Stem,
    /// stem2, down1, block1, down2, block2, down3, block3, up2, up1.
    convs: [Int8Conv; 9],
    seg: Dense,
    score: Dense,
    scratch_size: ScratchSize,
    /// Buffers of frames not running now: one, unless frames have run at
    /// the same time (threads sharing the model, or a frame started by a
    /// pool thread that waits inside another), each of which takes its own
    /// set. A lock held for a whole frame would deadlock there.
    spare: Mutex<Vec<Scratch>>,
}

impl Int8LusNet {
    /// Quantizes the model file's weights for the fastest kernel this CPU runs.
    pub(super) fn new(file: &ModelFile) -> Result<Self, ModelError> {
        let meta: &ModelMeta = &file.meta;
        let classes = meta.seg_classes.len();
        let kernel = Kernel::detect();
        let s = meta.input_size;
        if !s.is_multiple_of(16) {
            return Err(ModelError::Invariant(format!(
                "the int8 path needs an input side divisible by 16, not {s}"
            )));
        }
        let mut stem = None;
        let mut seg = None;
        let mut convs = Vec::new();
        // The largest padded quantized input of any layer.
        let mut input_len = 0;
        for ((name, spec), out_side) in conv_specs(meta.input_channels(), meta.widths, classes)
            .into_iter()
            .zip(output_sides(s))
        {
            let (weight, bias) = file.layer(name, spec.weight_shape())?;
            let w = weight
                .dequantize(&candle_core::Device::Cpu)?
                .to_vec2::<f32>()?;
            let bias = bias.to_vec1::<f32>()?;
            let taps = spec.kernel * spec.kernel * spec.in_channels;
            let kept = || w.iter().flat_map(|row| row[..taps].iter().copied());
            match name {
                "stem" => stem = Some(Stem::new(&w, &bias, spec)?),
                "seg" => {
                    seg = Some(Dense {
                        weights: kept().collect(),
                        bias,
                    })
                }
                _ => {
                    let rows: Vec<f32> = kept().collect();
                    let weights = Int8Weights::quantize(&rows, spec.out_channels, kernel);
                    let in_side = out_side * spec.stride;
                    input_len = input_len.max((in_side + 2).pow(2) * spec.in_channels);
                    // In place where the weights' rows are exactly the
                    // window's three runs (channels a multiple of 16).
                    let run = 3 * spec.in_channels;
                    let in_place =
                        kernel.reads_windows() && weights.k() == 3 * run && run.is_multiple_of(4);
                    convs.push(Int8Conv {
                        spec,
                        weights,
                        bias,
                        in_place,
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
        let layers = || ModelError::Invariant("model has the wrong number of layers".into());
        let convs: [Int8Conv; 9] = convs.try_into().map_err(|_| layers())?;
        let (stem, seg) = (stem.ok_or_else(layers)?, seg.ok_or_else(layers)?);
        let scratch_size = ScratchSize {
            side: s,
            channels: meta.input_channels(),
            widths: meta.widths,
            classes,
            input_len,
        };
        Ok(Self {
            side: s,
            channels: meta.input_channels(),
            threads: crate::model::threads(),
            normalized: std::array::from_fn(|p| {
                (p as f32 / 255.0 - meta.norm_mean) / meta.norm_std
            }),
            stem,
            convs,
            seg,
            score,
            scratch_size,
            spare: Mutex::new(vec![scratch_size.buffers()]),
        })
    }

    /// [`super::LusNet::forward`] on the integer path: a normalized
    /// `[N, S, S, C]` batch, frame by frame.
    pub(crate) fn forward(&self, x: &Tensor, meta: &ModelMeta) -> Result<ModelOutput, ModelError> {
        let (n, s, _, c) = x.dims4()?;
        let side = s / 4;
        let classes = meta.seg_classes.len();
        let (mut score, mut seg, mut embedding) = (Vec::new(), Vec::new(), Vec::new());
        for frame in x.flatten_all()?.to_vec1::<f32>()?.chunks_exact(s * s * c) {
            self.run(
                Frame::Normalized(frame),
                |score_logits, seg_logits, pooled| {
                    score.extend_from_slice(score_logits);
                    seg.extend_from_slice(seg_logits);
                    embedding.extend_from_slice(pooled);
                },
            );
        }
        let dim = 2 * meta.widths[3];
        let device = x.device();
        Ok(ModelOutput {
            score_logits: Tensor::from_vec(score, (n, SCORE_CLASSES), device)?,
            seg_logits: Tensor::from_vec(seg, (n, side, side, classes), device)?,
            embedding: Tensor::from_vec(embedding, (n, dim), device)?,
        })
    }

    /// Runs one `S×S` frame and hands `visit` the score logits, the
    /// `[S/4 · S/4][classes]` segmentation logits and the frame embedding
    /// (`2·w3` values) while the buffers are held.
    ///
    /// On several threads the whole frame runs inside rayon's pool, so that
    /// the calling thread does not sleep and wake around every layer.
    pub(super) fn run<T: Send>(
        &self,
        frame: Frame<'_>,
        visit: impl FnOnce(&[f32; SCORE_CLASSES], &[f32], &[f32]) -> T + Send,
    ) -> T {
        if self.threads > 1 {
            rayon::scope(|_| self.run_here(frame, visit))
        } else {
            self.run_here(frame, visit)
        }
    }

    /// [`Int8LusNet::run`] on the calling thread.
    fn run_here<T>(
        &self,
        frame: Frame<'_>,
        visit: impl FnOnce(&[f32; SCORE_CLASSES], &[f32], &[f32]) -> T,
    ) -> T {
        let mut x = self.take_scratch();
        let (s, c, threads) = (self.side, self.channels, self.threads);
        let padded = (s + 2) * c;
        let inside = padded..(s + 1) * padded;
        match frame {
            // One frame, or a 2.5D input's three (`ModelMeta::input_channels`).
            Frame::Pixels(pixels) => match c {
                1 => self.normalize::<1>(pixels, &mut x.frame[inside]),
                _ => self.normalize::<3>(pixels, &mut x.frame[inside]),
            },
            Frame::Normalized(values) => {
                let rows = x.frame[inside].chunks_exact_mut(padded);
                for (row, values) in rows.zip(values.chunks_exact(s * c)) {
                    row[c..(s + 1) * c].copy_from_slice(values);
                }
            }
        }
        let [stem2, down1, block1, down2, block2, down3, block3, up2, up1] = &self.convs;
        self.stem.forward(&x.frame, s, &mut x.t2, threads);
        stem2.run(&[(&x.t2, 1)], &mut x.input, &mut x.s2, threads);
        down1.run(&[(&x.s2, 1)], &mut x.input, &mut x.t4, threads);
        block1.run(&[(&x.t4, 1)], &mut x.input, &mut x.s4, threads);
        down2.run(&[(&x.s4, 1)], &mut x.input, &mut x.t8, threads);
        block2.run(&[(&x.t8, 1)], &mut x.input, &mut x.s8, threads);
        down3.run(&[(&x.s8, 1)], &mut x.input, &mut x.t16, threads);
        block3.run(&[(&x.t16, 1)], &mut x.input, &mut x.s16, threads);

        pool_mean_max(&x.s16, &mut x.pooled);
        self.score.forward(&x.pooled, &mut x.score_logits);

        up2.run(&[(&x.s16, 2), (&x.s8, 1)], &mut x.input, &mut x.d8, threads);
        up1.run(&[(&x.d8, 2), (&x.s4, 1)], &mut x.input, &mut x.d4, threads);
        self.seg.forward(&x.d4.data, &mut x.seg_logits);
        let visited = visit(&x.score_logits, &x.seg_logits, &x.pooled);
        self.spare().push(x);
        visited
    }

    /// A spare set of buffers, or a new one if every set is in use.
    fn take_scratch(&self) -> Scratch {
        let spare = self.spare().pop();
        spare.unwrap_or_else(|| self.scratch_size.buffers())
    }

    /// The spare buffers. A frame that panicked took its set with it, and
    /// every frame overwrites its buffers before reading them, so the
    /// spares are sound after a panic too.
    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<Scratch>> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Normalizes `C` planes of `S×S` pixels into the rows of the padded
    /// frame (`inside`: its `S` inner rows), channels interleaved, writing
    /// each row in order.
    #[inline(always)]
    fn normalize<const C: usize>(&self, pixels: &[u8], inside: &mut [f32]) {
        let s = self.side;
        let rows = inside.chunks_exact_mut((s + 2) * C);
        for (y, row) in rows.enumerate() {
            let cells = row[C..(s + 1) * C].chunks_exact_mut(C);
            for (x, cell) in cells.enumerate() {
                for (k, value) in cell.iter_mut().enumerate() {
                    let p = pixels[(k * s + y) * s + x];
                    *value = self.normalized[usize::from(p)];
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv::im2col;

    fn map(side: usize, channels: usize, seed: usize) -> FeatureMap {
        let mut m = FeatureMap::new(side, channels);
        for (i, v) in m.data.iter_mut().enumerate() {
            *v = ((i * 37 + seed * 11) % 23) as f32 * 0.25;
        }
        m.max = m.data.iter().fold(0f32, |m, &v| m.max(v));
        m
    }

    #[test]
    fn the_stem_is_the_direct_convolution_in_every_build() {
        // Three input channels and 20 outputs: a full block of 16 lanes
        // and a partial one, at stride 2 over a padded 10×10 frame.
        let (side, channels, outputs) = (10, 3, 20);
        let spec = ConvSpec {
            in_channels: channels,
            out_channels: outputs,
            kernel: 3,
            stride: 2,
            relu: true,
        };
        let value = |i: usize| ((i * 7919) % 101) as f32 / 50.0 - 1.0;
        // Rows padded to 32 taps, as the model file stores them.
        let weights: Vec<Vec<f32>> = (0..outputs)
            .map(|o| (0..32).map(|t| value(o * 32 + t) * 0.5).collect())
            .collect();
        let bias: Vec<f32> = (0..outputs).map(|o| value(o + 5000) * 0.3).collect();
        let stem = Stem::new(&weights, &bias, spec).expect("a stem of 3 channels");
        let padded = side + 2;
        let mut frame = vec![0f32; padded * padded * channels];
        for y in 1..=side {
            for x in 1..=side {
                for c in 0..channels {
                    frame[(y * padded + x) * channels + c] = value(y * 1000 + x * 10 + c) * 2.0;
                }
            }
        }
        let out_side = side / 2;
        let mut want = vec![0f32; out_side * out_side * outputs];
        for (i, y) in want.iter_mut().enumerate() {
            let (pixel, o) = (i / outputs, i % outputs);
            let (oy, ox) = (pixel / out_side, pixel % out_side);
            let mut sum = bias[o];
            for (tap, &w) in weights[o][..9 * channels].iter().enumerate() {
                let (ky, kx, c) = (tap / (3 * channels), tap / channels % 3, tap % channels);
                sum += frame[((oy * 2 + ky) * padded + ox * 2 + kx) * channels + c] * w;
            }
            *y = sum.max(0.0);
        }
        let close = |got: &[f32], build: &str| {
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-5, "{build}: output {i} is {g}, not {w}");
            }
        };
        // The build this CPU takes (AVX-512 here, if it has it).
        let mut map = FeatureMap::new(out_side, outputs);
        stem.forward(&frame, side, &mut map, 1);
        close(&map.data, "dispatched");
        assert_eq!(map.max, map.data.iter().fold(0f32, |m, &v| m.max(v)));
        // The plain loops, which the ARM boards run.
        let pixels = StemPixels {
            frame: &frame,
            side,
            out_side,
            first: 0,
            stride: 2,
            channels: outputs,
        };
        let mut plain = vec![0f32; want.len()];
        for (block, filters) in stem.blocks.iter().enumerate() {
            let lanes = block * STEM_LANES..outputs.min((block + 1) * STEM_LANES);
            stem_block::<3, 27>(&pixels, filters, lanes, &mut plain);
        }
        close(&plain, "plain loops");
    }

    #[test]
    fn a_gathered_panel_is_the_im2col_rows_of_the_quantized_map() {
        // 16 channels take a run length known at compile time, 5 the other arm.
        for (side, channels) in [(6, 16), (7, 5)] {
            let m = map(side, channels, 1);
            let mut input = QuantizedInput::with_capacity((side + 2) * (side + 2) * channels);
            input.fill(side, &[(&m, 1)], 1);
            let inverse = 1.0 / input.scale;
            let quantized: Vec<f32> = m
                .data
                .iter()
                .map(|&v| f32::from(quantize_activation(v, inverse)))
                .collect();
            let k = (9 * channels).div_ceil(16) * 16 + 16; // with zero padding after the taps
            for stride in [1, 2] {
                let out_side = (side - 1) / stride + 1;
                let want = im2col(&quantized, [1, side, side, channels], 3, stride, k);
                let pixels = out_side * out_side;
                for first in [0, 1, pixels / 2] {
                    let mut starts = vec![0; pixels - first];
                    input.window_starts(stride, out_side, first, &mut starts);
                    let mut panel = vec![7u8; (pixels - first) * k];
                    input.gather(&starts, k, &mut panel);
                    let got: Vec<f32> = panel.iter().map(|&q| f32::from(q)).collect();
                    assert_eq!(
                        got,
                        want[first * k..],
                        "{channels} channels, stride {stride}, from pixel {first}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_skip_connection_is_the_upsampled_map_then_the_skip_channels() {
        let (coarse, skip) = (map(2, 16, 2), map(4, 8, 3));
        let mut input = QuantizedInput::with_capacity(6 * 6 * 24);
        input.fill(4, &[(&coarse, 2), (&skip, 1)], 1);
        assert_eq!(input.channels, 24);
        let max = coarse.max.max(skip.max);
        assert_eq!(input.scale, activation_scale(max));
        let inverse = 1.0 / input.scale;
        for y in 0..4 {
            for x in 0..4 {
                let at = ((y + 1) * 6 + x + 1) * 24;
                let pixel = &input.data[at..at + 24];
                let c = ((y / 2) * 2 + x / 2) * 16;
                let s = (y * 4 + x) * 8;
                for (i, &q) in pixel.iter().enumerate() {
                    let v = if i < 16 {
                        coarse.data[c + i]
                    } else {
                        skip.data[s + i - 16]
                    };
                    assert_eq!(
                        q,
                        quantize_activation(v, inverse),
                        "pixel ({y}, {x}) channel {i}"
                    );
                }
            }
        }
        // The border is zero: "same" padding.
        assert!(input.data[..6 * 24].iter().all(|&q| q == 0));
    }
}
