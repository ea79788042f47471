//! The unit that flows through Pleura: one grayscale video frame.
//!
//! A frame carries only pixels and where it came from in time. It knows
//! nothing about sectors, models or scores.

use std::time::Instant;

/// One 8-bit grayscale frame, rows packed without padding.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayFrame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` luma values, row-major.
    pub pixels: Vec<u8>,
    /// Position of the frame in its stream, counting from 0.
    pub seq: u64,
    /// When the frame was captured or decoded: the start of its latency.
    pub captured: Instant,
}

impl GrayFrame {
    /// Wraps `pixels`, stamped now; returns `None` when their count is not
    /// `width * height`.
    pub fn new(width: usize, height: usize, pixels: Vec<u8>, seq: u64) -> Option<Self> {
        (width > 0 && height > 0 && pixels.len() == width * height).then(|| Self {
            width,
            height,
            pixels,
            seq,
            captured: Instant::now(),
        })
    }
}
