//! LusNet's two layer kinds, both computed as a matrix product:
//! a convolution (im2col, then `[pixels, K] × [K, out]`) and a dense layer.
//!
//! Activations are NHWC, so an im2col row is `kernel × kernel` runs of
//! contiguous channels, and a product's output is already NHWC. Weights are
//! stored `[out, K]` with K ordered `(ky, kx, in)` and zero-padded to a
//! multiple of 32, the Q8_0 block size, so every layer can be quantized.

use super::arch::{ConvSpec, padded_k};
use super::{ModelError, Precision};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Tensor};
use std::sync::Arc;

/// A weight matrix `[out, K]` and the product with it.
#[derive(Debug)]
enum Product {
    /// `[K, out]`, transposed once at load time.
    F32(Tensor),
    /// Candle's quantized product.
    Quantized(QMatMul),
}

impl Product {
    /// The product for `precision`; the integer path has its own layers
    /// (`int8_lusnet`), so `Int8` is refused here.
    fn new(weight: Arc<QTensor>, precision: Precision) -> Result<Self, ModelError> {
        Ok(match precision {
            Precision::F32 => {
                let w = weight.dequantize(&candle_core::Device::Cpu)?;
                Product::F32(w.t()?.contiguous()?)
            }
            Precision::Quantized => Product::Quantized(QMatMul::from_arc(weight)?),
            Precision::Int8 => {
                return Err(ModelError::Invariant(
                    "candle layers run f32 or q8; int8 runs in int8_lusnet".into(),
                ));
            }
        })
    }

    /// `rows [M, K] → [M, out]`.
    fn apply(&self, rows: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Product::F32(w) => rows.matmul(w),
            Product::Quantized(q) => quantized_product(q, rows),
        }
    }
}

/// Rows per thread below which splitting the product costs more than it saves.
const MIN_ROWS_PER_THREAD: usize = 256;

/// `QMatMul` over row blocks, one block per core.
///
/// Candle's quantized CPU product synchronizes its thread pool once per
/// output row. That suits LLM decoding (a few rows) but not convolutions
/// (tens of thousands of rows): under any other load it was measured more
/// than 25× slower than a single thread. Pleura therefore runs candle's pool
/// with one thread (`CANDLE_NUM_THREADS=1`, see [`crate::model::init_threads`])
/// and splits the rows across cores itself.
fn quantized_product(q: &QMatMul, rows: &Tensor) -> candle_core::Result<Tensor> {
    let m = rows.dim(0)?;
    let threads = crate::model::threads().min(m / MIN_ROWS_PER_THREAD).max(1);
    if threads == 1 {
        return q.forward(rows);
    }
    let chunk = m.div_ceil(threads);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..m)
            .step_by(chunk)
            .map(|start| {
                let block = rows.narrow(0, start, chunk.min(m - start));
                scope.spawn(move || block.and_then(|b| q.forward(&b)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(candle_core::Error::Msg(
                        "quantized product thread panicked".into(),
                    ))
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()
    })?;
    Tensor::cat(&parts, 0)
}

/// A square convolution with "same" padding, bias and optional ReLU.
#[derive(Debug)]
pub(super) struct Conv2d {
    spec: ConvSpec,
    product: Product,
    bias: Tensor,
}

impl Conv2d {
    /// Builds a layer from its stored weight (`spec.weight_shape()`) and bias `[out]`.
    pub(super) fn new(
        spec: ConvSpec,
        weight: Arc<QTensor>,
        bias: Tensor,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            spec,
            product: Product::new(weight, precision)?,
            bias,
        })
    }

    /// `x [N, H, W, in] → [N, H', W', out]`.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let ConvSpec { kernel, stride, .. } = self.spec;
        let (n, h, w, c) = x.dims4()?;
        if c != self.spec.in_channels {
            return Err(ModelError::Invariant(format!(
                "layer expects {} channels, got {c}",
                self.spec.in_channels
            )));
        }
        let pad = kernel / 2;
        let oh = (h + 2 * pad - kernel) / stride + 1;
        let ow = (w + 2 * pad - kernel) / stride + 1;
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        let k = padded_k(kernel * kernel * c);
        let rows = im2col(&data, [n, h, w, c], kernel, stride, k);
        let rows = Tensor::from_vec(rows, (n * oh * ow, k), x.device())?;
        let y = self.product.apply(&rows)?.broadcast_add(&self.bias)?;
        let y = if self.spec.relu { y.relu()? } else { y };
        Ok(y.reshape((n, oh, ow, self.spec.out_channels))?)
    }
}

/// Unfolds NHWC `data` into one row per output pixel holding its
/// `kernel × kernel × C` neighbourhood (zeros outside the image), each row
/// zero-padded to `k` values.
pub(super) fn im2col(
    data: &[f32],
    [n, h, w, c]: [usize; 4],
    kernel: usize,
    stride: usize,
    k: usize,
) -> Vec<f32> {
    let pad = kernel / 2;
    let oh = (h + 2 * pad - kernel) / stride + 1;
    let ow = (w + 2 * pad - kernel) / stride + 1;
    let mut rows = vec![0f32; n * oh * ow * k];
    for (row_index, row) in rows.chunks_exact_mut(k).enumerate() {
        let b = row_index / (oh * ow);
        let (oy, ox) = ((row_index / ow) % oh, row_index % ow);
        for ky in 0..kernel {
            let iy = (oy * stride + ky) as isize - pad as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            for kx in 0..kernel {
                let ix = (ox * stride + kx) as isize - pad as isize;
                if ix < 0 || ix >= w as isize {
                    continue;
                }
                let src = ((b * h + iy as usize) * w + ix as usize) * c;
                let dst = (ky * kernel + kx) * c;
                row[dst..dst + c].copy_from_slice(&data[src..src + c]);
            }
        }
    }
    rows
}

/// A dense layer `[N, in] → [N, out]`.
#[derive(Debug)]
pub(super) struct Linear {
    product: Product,
    bias: Tensor,
}

impl Linear {
    /// Builds a layer from its weight `[out, in]` (in a multiple of 32) and bias `[out]`.
    pub(super) fn new(
        weight: Arc<QTensor>,
        bias: Tensor,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            product: Product::new(weight, precision)?,
            bias,
        })
    }

    /// `x [N, in] → [N, out]`.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.product.apply(x)?.broadcast_add(&self.bias)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;
    use candle_core::{Device, IndexOp};

    /// A direct, loop-by-loop convolution to check the im2col path against.
    fn reference_conv(
        x: &[f32],
        [h, w, c]: [usize; 3],
        wt: &[f32],
        out: usize,
        kernel: usize,
        stride: usize,
    ) -> Vec<f32> {
        let pad = kernel as isize / 2;
        let oh = (h + 2 * pad as usize - kernel) / stride + 1;
        let ow = (w + 2 * pad as usize - kernel) / stride + 1;
        let k = padded_k(kernel * kernel * c);
        let mut y = vec![0f32; oh * ow * out];
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..out {
                    let mut acc = 0f32;
                    for ky in 0..kernel {
                        for kx in 0..kernel {
                            let iy = (oy * stride + ky) as isize - pad;
                            let ix = (ox * stride + kx) as isize - pad;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for ci in 0..c {
                                let xv = x[((iy as usize) * w + ix as usize) * c + ci];
                                acc += xv * wt[o * k + (ky * kernel + kx) * c + ci];
                            }
                        }
                    }
                    y[(oy * ow + ox) * out + o] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn im2col_convolution_matches_a_direct_convolution() -> Result<(), Box<dyn std::error::Error>> {
        let (h, w, c, out) = (7, 5, 3, 4);
        let k = padded_k(9 * c);
        let x: Vec<f32> = (0..h * w * c)
            .map(|i| ((i * 37) % 11) as f32 / 11.0 - 0.5)
            .collect();
        let mut wt = vec![0f32; out * k];
        for o in 0..out {
            for j in 0..9 * c {
                wt[o * k + j] = ((o * 13 + j * 7) % 9) as f32 / 9.0 - 0.4;
            }
        }
        for stride in [1, 2] {
            let weight = QTensor::quantize(
                &Tensor::from_vec(wt.clone(), (out, k), &Device::Cpu)?,
                GgmlDType::F32,
            )?;
            let bias = Tensor::zeros(out, candle_core::DType::F32, &Device::Cpu)?;
            let spec = ConvSpec {
                in_channels: c,
                out_channels: out,
                kernel: 3,
                stride,
                relu: false,
            };
            let conv = Conv2d::new(spec, Arc::new(weight), bias, Precision::F32)?;
            let input = Tensor::from_vec(x.clone(), (1, h, w, c), &Device::Cpu)?;
            let got = conv
                .forward(&input)?
                .i(0)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let want = reference_conv(&x, [h, w, c], &wt, out, 3, stride);
            assert_eq!(got.len(), want.len());
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-5, "stride {stride}: {g} vs {e}");
            }
        }
        Ok(())
    }
}
