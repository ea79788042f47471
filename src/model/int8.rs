//! Integer matrix products for convolutions: `u7 activations × i8 weights
//! → i32`, with SIMD kernels chosen at run time.
//!
//! Activations entering a LusNet convolution follow a ReLU, so they are
//! never negative. They are quantized to 0..=127 (7 bits): then one
//! instruction family serves every CPU without overflow, because a pair of
//! products is at most 2 × 127 × 127 = 32 258 < 2¹⁵:
//!
//! | kernel | CPU | inner step |
//! |---|---|---|
//! | [`Kernel::Avx512Vnni`] | x86-64 with AVX512-VNNI | `vpdpbusd`: 64 u8×i8 → 16 i32 |
//! | [`Kernel::Avx2`] | x86-64 with AVX2 | `vpmaddubsw` + `vpmaddwd`: 32 → 8 i32 |
//! | [`Kernel::NeonDot`] | ARMv8.2 with dotprod (Cortex-A76, A55) | `sdot`: 16 i8×i8 → 4 i32 |
//! | [`Kernel::Neon`] | ARMv8.0 (Cortex-A72, A53) | `smull` + `smlal` + `sadalp` |
//! | [`Kernel::Scalar`] | any | i32 loop (the reference) |
//!
//! Rows are `K` values long, `K` a multiple of [`K_STEP`] (zero-padded).
//! Weights are stored one output channel per row, so a product is a grid of
//! dot products; kernels compute four output channels per activation row
//! at once, reusing each activation load four times.
//!
//! The x86 kernels also read their rows in place
//! ([`Kernel::product_windows`]): a row is then a 3×3 window of a padded
//! map, three runs of bytes one map row apart, so a convolution needs no
//! gathered copy of its windows.

/// Row lengths are multiples of this (the widest kernel's step).
pub(super) const K_STEP: usize = 16;
/// Output channels computed together.
const COLUMNS: usize = 4;

/// One of the integer product implementations built for this
/// architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// Portable i32 loop.
    Scalar,
    /// x86-64 AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 AVX512-VNNI (with AVX512-VL and BW).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// AArch64 NEON without dot products (ARMv8.0).
    #[cfg(target_arch = "aarch64")]
    Neon,
    /// AArch64 NEON with `sdot` (ARMv8.2 dotprod).
    #[cfg(target_arch = "aarch64")]
    NeonDot,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(super) fn detect() -> Self {
        Self::available().last().copied().unwrap_or(Kernel::Scalar)
    }

    /// Every kernel this CPU runs, slowest first (the scalar one always).
    pub(super) fn available() -> Vec<Self> {
        let mut kernels = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                kernels.push(Kernel::Avx2);
            }
            if is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512f")
            {
                kernels.push(Kernel::Avx512Vnni);
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                kernels.push(Kernel::Neon);
            }
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                kernels.push(Kernel::NeonDot);
            }
        }
        kernels
    }

    /// `out[m][o] = Σₖ a[m][k] · w[o][k]` for `a: [M, k]` (values 0..=127)
    /// and weights packed for this kernel; `out` is `[M, weights.stride()]`.
    ///
    /// # Panics
    /// If the shapes disagree, the weights were packed for another kernel,
    /// or the kernel does not run on this CPU.
    pub(super) fn product(self, a: &[u8], weights: &Int8Weights, out: &mut [i32]) {
        let k = weights.k;
        assert!(a.len().is_multiple_of(k), "rows are not {k} long");
        let m = a.len() / k;
        assert_eq!(out.len(), m * weights.stride());
        assert_eq!(weights.kernel, self, "weights packed for another kernel");
        match self {
            // SAFETY: `Int8Weights::quantize` only packs for kernels this
            // CPU runs, and the shapes were checked above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe {
                x86::product_vnni(x86::Rows::panel(a, k), weights, out)
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::product_avx2(x86::Rows::panel(a, k), weights, out) },
            _ => self.product_rows(a, &weights.values, k, out),
        }
    }

    /// Whether this kernel reads 3×3 windows in place
    /// ([`Kernel::product_windows`]): the x86 ones, whose weights are
    /// packed by groups of 4 values of `k`.
    pub(super) fn reads_windows(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Kernel::Avx512Vnni | Kernel::Avx2) {
            return true;
        }
        false
    }

    /// [`Kernel::product`] without a gathered panel: row `i` of the
    /// activations is the 3×3 window of a padded map at `starts[i]`, three
    /// runs of `run` bytes (3 pixels × channels), `row_len` bytes apart.
    /// The weights' `k` must be exactly `3 · run`, and `run` a multiple
    /// of 4.
    ///
    /// # Panics
    /// If the shapes disagree, a window leaves the map, or the kernel does
    /// not read windows ([`Kernel::reads_windows`]).
    pub(super) fn product_windows(
        self,
        map: &[u8],
        starts: &[usize],
        row_len: usize,
        run: usize,
        weights: &Int8Weights,
        out: &mut [i32],
    ) {
        assert_eq!(weights.k, 3 * run, "rows are not three runs of {run}");
        assert!(run.is_multiple_of(4), "runs of {run} bytes");
        assert_eq!(out.len(), starts.len() * weights.stride());
        assert_eq!(weights.kernel, self, "weights packed for another kernel");
        let last = starts.iter().max().map_or(0, |&s| s + 2 * row_len + run);
        assert!(last <= map.len(), "a window leaves the map");
        match self {
            // SAFETY: as in `product`, and every window lies in `map`.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe {
                x86::product_vnni(x86::Rows::windows(map, starts, row_len, run), weights, out)
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe {
                x86::product_avx2(x86::Rows::windows(map, starts, row_len, run), weights, out)
            },
            _ => panic!("{self:?} does not read windows in place"),
        }
    }

    /// The row-major kernels: four dot products at a time.
    fn product_rows(self, a: &[u8], w: &[i8], k: usize, out: &mut [i32]) {
        let o = w.len() / k;
        for (row, out_row) in a.chunks_exact(k).zip(out.chunks_exact_mut(o)) {
            let mut column = 0;
            while column + COLUMNS <= o {
                let block = &w[column * k..(column + COLUMNS) * k];
                let sums = self.dot4(row, block, k);
                out_row[column..column + COLUMNS].copy_from_slice(&sums);
                column += COLUMNS;
            }
            for c in column..o {
                out_row[c] = dot_scalar(row, &w[c * k..(c + 1) * k]);
            }
        }
    }

    /// Four dot products of `row` with the four rows of `block`.
    fn dot4(self, row: &[u8], block: &[i8], k: usize) -> [i32; COLUMNS] {
        match self {
            Kernel::Scalar => std::array::from_fn(|j| dot_scalar(row, &block[j * k..(j + 1) * k])),
            // SAFETY (both below): weights are only packed for kernels the
            // CPU runs, and `row` and `block` hold k and 4·k values with k a
            // multiple of K_STEP, which is all the kernels read.
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => unsafe { arm::dot4_neon(row, block, k) },
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDot => unsafe { arm::dot4_sdot(row, block, k) },
            #[allow(unreachable_patterns)]
            _ => unreachable!("{self:?} is not built for this architecture"),
        }
    }
}

/// The reference dot product.
fn dot_scalar(a: &[u8], w: &[i8]) -> i32 {
    a.iter().zip(w).map(|(&a, &w)| a as i32 * w as i32).sum()
}

/// The x86 kernels use weights packed by groups of 4 k-values for `LANES`
/// output channels: one 32-bit lane per channel, so that a broadcast of 4
/// activations against one vector of weights yields `LANES` partial sums
/// without any horizontal addition.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Int8Weights;
    use std::arch::x86_64::*;

    /// Rows computed together (each weight load serves them all).
    const ROWS: usize = 4;

    /// Covers `m` rows × `blocks` blocks of channels with tiles of up to
    /// `largest` = (rows, blocks): tiles of that many rows, then of
    /// [`ROWS`], then single rows at the end. Calls `tile(rows, blocks,
    /// first row, first block)` for each.
    #[inline(always)]
    fn tiles(
        m: usize,
        blocks: usize,
        largest: (usize, usize),
        mut tile: impl FnMut(usize, usize, usize, usize),
    ) {
        let (tall, columns) = largest;
        let mut row = 0;
        while row < m {
            let left = m - row;
            let rows = if left >= tall {
                tall
            } else if left >= ROWS {
                ROWS
            } else {
                1
            };
            let mut block = 0;
            while block < blocks {
                let width = (blocks - block).min(columns);
                tile(rows, width, row, block);
                block += width;
            }
            row += rows;
        }
    }

    /// The 4 activations at `a[at..at + 4]` in every lane.
    #[inline(always)]
    unsafe fn broadcast4(a: *const u8, at: usize) -> i32 {
        // SAFETY: the caller keeps at + 4 within the row.
        unsafe { (a.add(at) as *const i32).read_unaligned() }
    }

    /// Where the activation rows of a product are: each row is `parts`
    /// runs of `run` bytes, `gap` bytes apart, from its start.
    #[derive(Clone, Copy)]
    pub(super) struct Rows<'a> {
        data: &'a [u8],
        /// Each row's start in `data`; `None`: row `i` starts at `i · run`.
        starts: Option<&'a [usize]>,
        parts: usize,
        run: usize,
        gap: usize,
    }

    impl<'a> Rows<'a> {
        /// Rows of `k` bytes one after another.
        pub(super) fn panel(a: &'a [u8], k: usize) -> Self {
            Self {
                data: a,
                starts: None,
                parts: 1,
                run: k,
                gap: 0,
            }
        }

        /// 3×3 windows read in place (see [`super::Kernel::product_windows`]).
        pub(super) fn windows(
            map: &'a [u8],
            starts: &'a [usize],
            row_len: usize,
            run: usize,
        ) -> Self {
            Self {
                data: map,
                starts: Some(starts),
                parts: 3,
                run,
                gap: row_len,
            }
        }

        /// Rows in all.
        fn len(&self) -> usize {
            match self.starts {
                Some(starts) => starts.len(),
                None => self.data.len() / self.run,
            }
        }

        /// Where row `i` starts.
        #[inline(always)]
        fn start(&self, i: usize) -> *const u8 {
            let at = match self.starts {
                Some(starts) => starts[i],
                None => i * self.run,
            };
            // SAFETY: rows lie within `data` (checked by the callers).
            unsafe { self.data.as_ptr().add(at) }
        }
    }

    /// The AVX512-VNNI product, in tiles of up to 4 × 4 blocks of 16
    /// channels: 16 chains of `vpdpbusd`, each weight load serving 4 rows
    /// and each activation broadcast 4 blocks. Layers of 1 or 2 blocks (16
    /// or 32 channels) take 8 rows a tile instead, so that 8 or 16 chains
    /// are in flight rather than 4 or 8: on a core that issues two
    /// `vpdpbusd` a cycle with a latency of 5 (Intel's server cores, in
    /// LLVM's model of them), fewer than 10 chains leave it waiting.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn product_vnni(a: Rows<'_>, weights: &Int8Weights, out: &mut [i32]) {
        let blocks = weights.stride() / 16;
        let largest = if blocks <= 2 { (8, 2) } else { (ROWS, 4) };
        tiles(a.len(), blocks, largest, |rows, columns, row, block| {
            // SAFETY: `tiles` keeps row + rows ≤ m and block + columns ≤ blocks.
            unsafe {
                match (rows, columns) {
                    (8, 2) => vnni_tile::<8, 2>(a, weights, out, row, block),
                    (8, _) => vnni_tile::<8, 1>(a, weights, out, row, block),
                    (4, 4) => vnni_tile::<4, 4>(a, weights, out, row, block),
                    (4, 3) => vnni_tile::<4, 3>(a, weights, out, row, block),
                    (4, 2) => vnni_tile::<4, 2>(a, weights, out, row, block),
                    (4, 1) => vnni_tile::<4, 1>(a, weights, out, row, block),
                    (_, 4) => vnni_tile::<1, 4>(a, weights, out, row, block),
                    (_, 3) => vnni_tile::<1, 3>(a, weights, out, row, block),
                    (_, 2) => vnni_tile::<1, 2>(a, weights, out, row, block),
                    _ => vnni_tile::<1, 1>(a, weights, out, row, block),
                }
            }
        });
    }

    /// `R` rows × `C` blocks of 16 channels.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn vnni_tile<const R: usize, const C: usize>(
        a: Rows<'_>,
        weights: &Int8Weights,
        out: &mut [i32],
        row: usize,
        block: usize,
    ) {
        let blocks = weights.stride() / 16;
        let starts: [*const u8; R] = std::array::from_fn(|r| a.start(row + r));
        let w = weights.packed.as_ptr();
        let mut acc = [[_mm512_setzero_si512(); C]; R];
        let mut q = 0;
        for part in 0..a.parts {
            for at in (part * a.gap..part * a.gap + a.run).step_by(4) {
                // SAFETY: packed holds (k / 4) · blocks · 64 bytes, and
                // k = parts · run.
                let base = unsafe { w.add((q * blocks + block) * 64) };
                let ws: [__m512i; C] = std::array::from_fn(|c| unsafe {
                    _mm512_loadu_si512(base.add(c * 64) as *const _)
                });
                for (acc, &start) in acc.iter_mut().zip(&starts) {
                    let x = _mm512_set1_epi32(unsafe { broadcast4(start, at) });
                    for (acc, w) in acc.iter_mut().zip(&ws) {
                        *acc = _mm512_dpbusd_epi32(*acc, x, *w);
                    }
                }
                q += 1;
            }
        }
        let stride = weights.stride();
        for (r, acc) in acc.iter().enumerate() {
            for (c, v) in acc.iter().enumerate() {
                let at = (row + r) * stride + (block + c) * 16;
                // SAFETY: at + 16 ≤ out.len() = m · stride.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(at) as *mut _, *v) };
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn product_avx2(a: Rows<'_>, weights: &Int8Weights, out: &mut [i32]) {
        let blocks = weights.stride() / 8;
        let largest = (ROWS, 2);
        tiles(a.len(), blocks, largest, |rows, columns, row, block| {
            // SAFETY: `tiles` keeps row + rows ≤ m and block + columns ≤ blocks.
            unsafe {
                match (rows, columns) {
                    (4, 2) => avx2_tile::<4, 2>(a, weights, out, row, block),
                    (4, _) => avx2_tile::<4, 1>(a, weights, out, row, block),
                    (_, 2) => avx2_tile::<1, 2>(a, weights, out, row, block),
                    _ => avx2_tile::<1, 1>(a, weights, out, row, block),
                }
            }
        });
    }

    /// `R` rows × `C` blocks of 8 channels.
    #[target_feature(enable = "avx2")]
    unsafe fn avx2_tile<const R: usize, const C: usize>(
        a: Rows<'_>,
        weights: &Int8Weights,
        out: &mut [i32],
        row: usize,
        block: usize,
    ) {
        let blocks = weights.stride() / 8;
        let starts: [*const u8; R] = std::array::from_fn(|r| a.start(row + r));
        let w = weights.packed.as_ptr();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); C]; R];
        let mut q = 0;
        for part in 0..a.parts {
            for at in (part * a.gap..part * a.gap + a.run).step_by(4) {
                // SAFETY: packed holds (k / 4) · blocks · 32 bytes, and
                // k = parts · run.
                let base = unsafe { w.add((q * blocks + block) * 32) };
                let ws: [__m256i; C] = std::array::from_fn(|c| unsafe {
                    _mm256_loadu_si256(base.add(c * 32) as *const __m256i)
                });
                for (acc, &start) in acc.iter_mut().zip(&starts) {
                    let x = _mm256_set1_epi32(unsafe { broadcast4(start, at) });
                    for (acc, w) in acc.iter_mut().zip(&ws) {
                        // u8×i8 pairs to i16 (no saturation: a ≤ 127), then i32.
                        let pairs = _mm256_maddubs_epi16(x, *w);
                        *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
                    }
                }
                q += 1;
            }
        }
        let stride = weights.stride();
        for (r, acc) in acc.iter().enumerate() {
            for (c, v) in acc.iter().enumerate() {
                let at = (row + r) * stride + (block + c) * 8;
                // SAFETY: at + 8 ≤ out.len() = m · stride.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(at) as *mut __m256i, *v) };
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::COLUMNS;
    use std::arch::aarch64::*;

    #[target_feature(enable = "neon")]
    pub(super) unsafe fn dot4_neon(row: &[u8], block: &[i8], k: usize) -> [i32; COLUMNS] {
        let mut acc = [vdupq_n_s32(0); COLUMNS];
        let (a, w) = (row.as_ptr() as *const i8, block.as_ptr());
        let mut i = 0;
        while i < k {
            // SAFETY: i + 16 ≤ k. Activations are 0..=127, so as i8 they
            // keep their value; two products fit an i16.
            let x = unsafe { vld1q_s8(a.add(i)) };
            for (j, acc) in acc.iter_mut().enumerate() {
                let y = unsafe { vld1q_s8(w.add(j * k + i)) };
                let low = vmull_s8(vget_low_s8(x), vget_low_s8(y));
                let pairs = vmlal_high_s8(low, x, y);
                *acc = vpadalq_s16(*acc, pairs);
            }
            i += 16;
        }
        acc.map(|v| vaddvq_s32(v))
    }

    #[target_feature(enable = "neon,dotprod")]
    pub(super) unsafe fn dot4_sdot(row: &[u8], block: &[i8], k: usize) -> [i32; COLUMNS] {
        let mut acc = [vdupq_n_s32(0); COLUMNS];
        let (a, w) = (row.as_ptr() as *const i8, block.as_ptr());
        let mut i = 0;
        while i < k {
            // SAFETY: i + 16 ≤ k.
            let x = unsafe { vld1q_s8(a.add(i)) };
            for (j, acc) in acc.iter_mut().enumerate() {
                let y = unsafe { vld1q_s8(w.add(j * k + i)) };
                // `vdotq_s32` is not stable in Rust yet; the instruction is.
                unsafe {
                    std::arch::asm!(
                        "sdot {acc:v}.4s, {x:v}.16b, {y:v}.16b",
                        acc = inout(vreg) *acc,
                        x = in(vreg) x,
                        y = in(vreg) y,
                        options(pure, nomem, nostack),
                    );
                }
            }
            i += 16;
        }
        acc.map(|v| vaddvq_s32(v))
    }
}

/// A layer's weights for the integer product: i8 values with one scale
/// per output channel (`weight ≈ scale · value`), rows zero-padded to a
/// multiple of [`K_STEP`], laid out for one [`Kernel`].
#[derive(Debug, Clone)]
pub(super) struct Int8Weights {
    kernel: Kernel,
    /// `[out, k]`, row-major (scalar and NEON kernels).
    values: Vec<i8>,
    /// The x86 layout (see `mod x86`); empty for the others.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    packed: Vec<i8>,
    scales: Vec<f32>,
    k: usize,
    stride: usize,
}

impl Int8Weights {
    /// Quantizes `[out, k_in]` f32 weights symmetrically per output
    /// channel, for `kernel`.
    pub(super) fn quantize(weights: &[f32], out: usize, kernel: Kernel) -> Self {
        let k_in = weights.len() / out.max(1);
        let k = k_in.div_ceil(K_STEP).max(1) * K_STEP;
        let mut values = vec![0i8; out * k];
        let mut scales = Vec::with_capacity(out);
        for (row, dst) in weights.chunks_exact(k_in).zip(values.chunks_exact_mut(k)) {
            let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            for (d, w) in dst.iter_mut().zip(row) {
                *d = (w / scale).round().clamp(-127.0, 127.0) as i8;
            }
            scales.push(scale);
        }
        let lanes = match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => 16,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => 8,
            _ => 0,
        };
        let (packed, stride) = if lanes == 0 {
            (Vec::new(), out)
        } else {
            let stride = out.div_ceil(lanes) * lanes;
            let blocks = stride / lanes;
            let mut packed = vec![0i8; k * stride];
            for o in 0..out {
                let (block, lane) = (o / lanes, o % lanes);
                for q in 0..k / 4 {
                    let at = ((q * blocks + block) * lanes + lane) * 4;
                    packed[at..at + 4].copy_from_slice(&values[o * k + 4 * q..o * k + 4 * q + 4]);
                }
            }
            (packed, stride)
        };
        Self {
            kernel,
            values,
            packed,
            scales,
            k,
            stride,
        }
    }

    /// Padded row length of the activations.
    pub(super) fn k(&self) -> usize {
        self.k
    }

    /// Output channels.
    pub(super) fn out(&self) -> usize {
        self.scales.len()
    }

    /// Row length of the sums (output channels, padded for the kernel).
    pub(super) fn stride(&self) -> usize {
        self.stride
    }

    /// The kernel these weights are laid out for.
    pub(super) fn kernel(&self) -> Kernel {
        self.kernel
    }
}

/// Quantizes non-negative activations to 0..=127: returns the scale
/// (`value ≈ scale · q`) to pass to [`requantize`]. `max` is their maximum.
pub(super) fn activation_scale(max: f32) -> f32 {
    if max > 0.0 { max / 127.0 } else { 1.0 }
}

/// One activation to 0..=127 given `1 / scale`, rounded to nearest
/// (negative values, which a ReLU never gives, and NaN become 0). Clamped
/// as a float first, so that loops over it vectorize without the checks
/// of a saturating conversion.
#[inline]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN, `max` turns it into 0
pub(super) fn quantize_activation(value: f32, inverse_scale: f32) -> u8 {
    let q = (value * inverse_scale + 0.5).max(0.0).min(127.0);
    // SAFETY: `max` turns NaN into 0, so q is a finite value in 0..=127.
    unsafe { q.to_int_unchecked::<i32>() as u8 }
}

/// Turns i32 sums back into f32 outputs with bias and optional ReLU fused:
/// `out = sum · a_scale · w_scale[o] + bias[o]`. Returns the largest output
/// (0 if none is positive): the next layer's activation scale, found while
/// the outputs are still in the L1 cache rather than by reading the whole
/// layer again.
///
/// Like the other element-wise loops around the products, this is plain
/// Rust for the compiler to vectorize, built twice on x86-64 (its baseline,
/// SSE2, scalarizes the conversions): for AVX2 + FMA, chosen at run time,
/// and for the baseline. AArch64's baseline has NEON.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
pub(crate) fn requantize(
    sums: &[i32],
    weights: &Int8Weights,
    a_scale: f32,
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) -> f32 {
    let o = weights.out();
    for (sum_row, out_row) in sums
        .chunks_exact(weights.stride)
        .zip(out.chunks_exact_mut(o))
    {
        for (((y, &s), &ws), &b) in out_row
            .iter_mut()
            .zip(sum_row)
            .zip(&weights.scales)
            .zip(bias)
        {
            let v = s as f32 * (a_scale * ws) + b;
            *y = if relu { v.max(0.0) } else { v };
        }
    }
    max_of(&out[..sums.len() / weights.stride * o])
}

/// The largest of `values`, 0 if none is positive: in 16 lanes, so that it
/// vectorizes; `values` were just written and are still in the L1 cache.
#[inline(always)]
pub(super) fn max_of(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    rest.iter()
        .chain(&lanes)
        .fold(0f32, |m, &v| if v > m { v } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Random activations 0..=127 and weights −127..=127, including the
    /// extremes that would overflow a careless kernel.
    fn operands(m: usize, o: usize, k: usize, seed: u64) -> (Vec<u8>, Vec<i8>) {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut a: Vec<u8> = (0..m * k).map(|_| rng.random_range(0..=127)).collect();
        let mut w: Vec<i8> = (0..o * k).map(|_| rng.random_range(-127..=127)).collect();
        a[..k].fill(127);
        w[..k].fill(127);
        w[k..2 * k].fill(-127);
        (a, w)
    }

    #[test]
    fn every_kernel_on_this_cpu_equals_the_scalar_reference() {
        // Row and channel counts that leave every tile shape a remainder.
        for (m, o, k, seed) in [
            (7, 16, 64, 1),
            (33, 6, 192, 2),
            (9, 131, 1152, 3),
            (13, 32, 144, 4),
            (23, 20, 48, 5),
        ] {
            let (a, w) = operands(m, o, k, seed);
            // Integer weights given as f32 with a scale of 1 quantize exactly.
            let mut f: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            for row in f.chunks_exact_mut(k) {
                row[k - 1] = 127.0;
            }
            let product = |kernel: Kernel| {
                let weights = Int8Weights::quantize(&f, o, kernel);
                let mut out = vec![0; m * weights.stride()];
                kernel.product(&a, &weights, &mut out);
                out.chunks_exact(weights.stride())
                    .flat_map(|row| row[..o].to_vec())
                    .collect::<Vec<i32>>()
            };
            let reference = product(Kernel::Scalar);
            assert_eq!(reference[0], 127 * 127 * k as i32);
            assert_eq!(reference[1], -127 * 127 * (k as i32 - 1) + 127 * 127);
            for kernel in Kernel::available() {
                assert_eq!(product(kernel), reference, "{kernel:?} m={m} o={o} k={k}");
            }
        }
    }

    #[test]
    fn a_kernel_reading_windows_in_place_equals_the_gathered_product() {
        // A padded 7×7 map of 16 and of 64 channels, every window at
        // stride 1 and 2, in tiles with remainders (up to 131 outputs).
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        for (channels, o) in [(16, 16), (16, 131), (64, 20)] {
            let (side, run) = (7, 3 * channels);
            let row_len = (side + 2) * channels;
            let map: Vec<u8> = (0..(side + 2) * row_len)
                .map(|_| rng.random_range(0..=127))
                .collect();
            let w: Vec<f32> = (0..o * 3 * run)
                .map(|_| f32::from(rng.random_range(-127i8..=127)))
                .collect();
            for stride in [1, 2] {
                let out_side = (side - 1) / stride + 1;
                let starts: Vec<usize> = (0..out_side * out_side)
                    .map(|i| (i / out_side) * stride * row_len + (i % out_side) * stride * channels)
                    .collect();
                let gathered: Vec<u8> = starts
                    .iter()
                    .flat_map(|&s| {
                        (0..3).flat_map(move |ky| s + ky * row_len..s + ky * row_len + run)
                    })
                    .map(|at| map[at])
                    .collect();
                let reference = Int8Weights::quantize(&w, o, Kernel::Scalar);
                let mut want = vec![0; starts.len() * reference.stride()];
                Kernel::Scalar.product(&gathered, &reference, &mut want);
                for kernel in Kernel::available()
                    .into_iter()
                    .filter(|k| k.reads_windows())
                {
                    let weights = Int8Weights::quantize(&w, o, kernel);
                    let mut out = vec![0; starts.len() * weights.stride()];
                    kernel.product_windows(&map, &starts, row_len, run, &weights, &mut out);
                    let got: Vec<i32> = out
                        .chunks_exact(weights.stride())
                        .flat_map(|row| row[..o].to_vec())
                        .collect();
                    assert_eq!(
                        got, want,
                        "{kernel:?}, {channels} channels, stride {stride}"
                    );
                }
            }
        }
    }

    #[test]
    fn quantized_weights_and_activations_reproduce_the_f32_product() {
        let (m, out, k_in) = (50, 6, 75);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
        let a: Vec<f32> = (0..m * k_in).map(|_| rng.random_range(0.0..3.0)).collect();
        let w: Vec<f32> = (0..out * k_in)
            .map(|_| rng.random_range(-0.5..0.5))
            .collect();
        let bias: Vec<f32> = (0..out).map(|i| i as f32 * 0.1 - 0.3).collect();
        let weights = Int8Weights::quantize(&w, out, Kernel::detect());
        let scale = activation_scale(a.iter().fold(0f32, |x, &y| x.max(y)));
        let k = weights.k();
        let mut rows = vec![0u8; m * k];
        for (src, dst) in a.chunks_exact(k_in).zip(rows.chunks_exact_mut(k)) {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = quantize_activation(v, 1.0 / scale);
            }
        }
        let mut sums = vec![0; m * weights.stride()];
        weights.kernel().product(&rows, &weights, &mut sums);
        let mut y = vec![0f32; m * out];
        let max = requantize(&sums, &weights, scale, &bias, false, &mut y);
        let scanned = y.iter().fold(0f32, |m, &v| m.max(v));
        assert_eq!(max, scanned, "the largest output, found on the way");
        let mut worst = 0f32;
        for r in 0..m {
            for o in 0..out {
                let exact: f32 = (0..k_in)
                    .map(|i| a[r * k_in + i] * w[o * k_in + i])
                    .sum::<f32>()
                    + bias[o];
                worst = worst.max((y[r * out + o] - exact).abs());
            }
        }
        // 7-bit activations and 8-bit weights: about 1 % of the output range.
        assert!(worst < 0.15, "worst error {worst}");
    }

    #[test]
    fn the_detected_kernel_is_the_widest_the_cpu_has() {
        let available = Kernel::available();
        assert_eq!(available[0], Kernel::Scalar);
        assert_eq!(Kernel::detect(), *available.last().unwrap());
        eprintln!("int8 kernels here: {available:?}");
    }
}
