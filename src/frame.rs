//! The unit that flows through Pleura: one grayscale video frame.
//!
//! A frame carries only pixels and where it came from in time. It knows
//! nothing about sectors, models or scores.
//!
//! It also holds the one rule for the size of any picture Pleura is asked
//! to make or show ([`SIDES`]): a screen, a grabber's frames, a phantom;
//! and, with its upper bound ([`MAX_SIDE`]), for any picture it reads: an
//! image file, a grabber's JPEG, a clip ([`check_declared_size`]).

use std::ops::RangeInclusive;
use std::time::Instant;

/// The sides, in pixels, Pleura accepts for a picture it is asked to make
/// or show: a screen (`--screen`, a board's `display.size`), a grabber's
/// frames (`v4l:…,size=`, a board's `capture.size`) and a phantom clip
/// (`--size`, `phantom:size=`). 4096 covers 4K grabbers and every panel a
/// unit drives; 16 is the smallest picture the model's input can be cut
/// from.
pub const SIDES: RangeInclusive<u64> = 16..=4096;

/// The largest side, in pixels, of any picture Pleura makes, shows or
/// reads: the upper bound of [`SIDES`].
pub const MAX_SIDE: u64 = *SIDES.end();

/// Checks the size an input declares for its pictures (an image file's
/// header, a grabber's JPEG or answer, a clip's video stream) against
/// [`MAX_SIDE`], before anything is allocated for them: a small file may
/// declare a huge picture (a decompression bomb). Only the upper bound
/// applies here; a picture too small to score is the scorer's to refuse.
/// The error says the declared size and the limit.
pub fn check_declared_size(width: u64, height: u64) -> Result<(), SizeError> {
    if width <= MAX_SIDE && height <= MAX_SIDE {
        Ok(())
    } else {
        Err(SizeError::Declared { width, height })
    }
}

/// Checks a size `width`×`height` against [`SIDES`]; the error says which
/// size and the rule.
pub fn check_size(width: u64, height: u64) -> Result<(usize, usize), SizeError> {
    if SIDES.contains(&width) && SIDES.contains(&height) {
        Ok((width as usize, height as usize))
    } else {
        Err(SizeError::Sides { width, height })
    }
}

/// A picture size Pleura does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// An input declares a picture larger than any Pleura reads.
    #[error("declares {width}x{height} pixels, more than the {MAX_SIDE}x{MAX_SIDE} Pleura reads")]
    Declared {
        /// The declared width.
        width: u64,
        /// The declared height.
        height: u64,
    },
    /// A size asked for (a screen, a grabber's frames) outside [`SIDES`].
    #[error("size {width}x{height}: each side must be {} to {}", SIDES.start(), SIDES.end())]
    Sides {
        /// The width asked for.
        width: u64,
        /// The height asked for.
        height: u64,
    },
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_has_each_side_16_to_4096() {
        assert_eq!(check_size(800, 480), Ok((800, 480)));
        assert_eq!(check_size(16, 4096), Ok((16, 4096)));
        for bad in [(100000, 100000), (15, 480), (800, 4097), (0, 0)] {
            let err = check_size(bad.0, bad.1).unwrap_err().to_string();
            assert!(err.contains("16 to 4096"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_declared_size_may_be_small_but_no_side_over_4096() {
        assert_eq!(MAX_SIDE, 4096);
        for ok in [(4096, 4096), (1, 1), (0, 0), (4096, 16)] {
            assert_eq!(check_declared_size(ok.0, ok.1), Ok(()), "{ok:?}");
        }
        for bad in [(20000, 20000), (4097, 16), (16, 4097), (u64::MAX, 1)] {
            let err = check_declared_size(bad.0, bad.1).unwrap_err().to_string();
            let size = format!("{}x{}", bad.0, bad.1);
            assert!(err.contains(&size) && err.contains("4096x4096"), "{err}");
        }
    }
}
