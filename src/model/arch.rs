//! LusNet's architecture as numbers: each convolution's shape, each
//! layer's output side, the score head's shape and the cost of a frame.
//! The candle path (`lusnet.rs`), the integer path
//! (`int8_lusnet.rs`) and the importer ([`super::import`]) all build
//! from these.

use super::SCORE_CLASSES;

/// Q8_0 quantizes blocks of this many weights.
pub(crate) const BLOCK: usize = 32;

/// `k` rounded up to a multiple of [`BLOCK`].
pub(crate) fn padded_k(k: usize) -> usize {
    k.div_ceil(BLOCK) * BLOCK
}

/// The geometry of one convolution layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel side (1 or 3).
    pub kernel: usize,
    /// Stride (1 or 2).
    pub stride: usize,
    /// Whether a ReLU follows.
    pub relu: bool,
}

impl ConvSpec {
    /// The `[out, K]` shape its stored weight has.
    pub fn weight_shape(&self) -> (usize, usize) {
        (
            self.out_channels,
            padded_k(self.kernel * self.kernel * self.in_channels),
        )
    }
}

/// The convolution layers of LusNet in forward order, for an input of
/// `input_channels` planes (1, or 3 for a 2.5D model).
pub fn conv_specs(
    input_channels: usize,
    widths: [usize; 4],
    seg_classes: usize,
) -> Vec<(&'static str, ConvSpec)> {
    let [w0, w1, w2, w3] = widths;
    let conv3 = |in_channels, out_channels, stride| ConvSpec {
        in_channels,
        out_channels,
        kernel: 3,
        stride,
        relu: true,
    };
    vec![
        ("stem", conv3(input_channels, w0, 2)),
        ("stem2", conv3(w0, w0, 1)),
        ("down1", conv3(w0, w1, 2)),
        ("block1", conv3(w1, w1, 1)),
        ("down2", conv3(w1, w2, 2)),
        ("block2", conv3(w2, w2, 1)),
        ("down3", conv3(w2, w3, 2)),
        ("block3", conv3(w3, w3, 1)),
        ("up2", conv3(w3 + w2, w2, 1)),
        ("up1", conv3(w2 + w1, w1, 1)),
        (
            "seg",
            ConvSpec {
                in_channels: w1,
                out_channels: seg_classes,
                kernel: 1,
                stride: 1,
                relu: false,
            },
        ),
    ]
}

/// The score head's `[out, in]` weight shape.
pub fn score_shape(widths: [usize; 4]) -> (usize, usize) {
    (SCORE_CLASSES, 2 * widths[3])
}

/// The side of each layer's output, in [`conv_specs`] order, for an
/// `input_size × input_size` frame.
pub fn output_sides(input_size: usize) -> [usize; 11] {
    [2, 2, 4, 4, 8, 8, 16, 16, 8, 4, 4].map(|d| input_size / d)
}

/// Multiply-accumulates for one frame, for cost budgets.
pub fn macs_per_frame(
    input_size: usize,
    input_channels: usize,
    widths: [usize; 4],
    seg_classes: usize,
) -> u64 {
    let convs: u64 = conv_specs(input_channels, widths, seg_classes)
        .iter()
        .zip(output_sides(input_size))
        .map(|((_, s), side)| {
            (side * side) as u64 * (s.kernel * s.kernel * s.in_channels * s.out_channels) as u64
        })
        .sum();
    convs + (2 * widths[3] * SCORE_CLASSES) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_k_rounds_up_to_the_q8_block() {
        assert_eq!(padded_k(9), 32);
        assert_eq!(padded_k(144), 160);
        assert_eq!(padded_k(288), 288);
    }

    #[test]
    fn v1_at_128_costs_well_under_half_a_gigamac() {
        let macs = macs_per_frame(128, 1, [16, 32, 64, 128], 3);
        assert!(macs < 500_000_000, "{macs}");
        assert!(macs > 50_000_000, "{macs}");
    }
}
