//! The unit that flows through Pleura: one grayscale video frame.
//!
//! A frame carries only pixels and where it came from in time. It knows
//! nothing about sectors, models or scores.
//!
//! It also holds the one rule for the size of any picture Pleura is asked
//! to make or show ([`SIDES`]): a screen, a grabber's frames, a phantom.

use std::ops::RangeInclusive;
use std::time::Instant;

/// The sides, in pixels, Pleura accepts for a picture it is asked to make
/// or show: a screen (`--screen`, a board's `display.size`), a grabber's
/// frames (`v4l:…,size=`, a board's `capture.size`) and a phantom clip
/// (`--size`, `phantom:size=`). 4096 covers 4K grabbers and every panel a
/// unit drives; 16 is the smallest picture the model's input can be cut
/// from.
pub const SIDES: RangeInclusive<u64> = 16..=4096;

/// Checks a size `width`×`height` against [`SIDES`]; the error says which
/// size and the rule.
pub fn check_size(width: u64, height: u64) -> Result<(usize, usize), String> {
    if SIDES.contains(&width) && SIDES.contains(&height) {
        Ok((width as usize, height as usize))
    } else {
        Err(format!(
            "size {width}x{height}: each side must be {} to {}",
            SIDES.start(),
            SIDES.end()
        ))
    }
}

/// Parses `WxH` and checks it against [`SIDES`].
pub fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{text}' is not a size WxH");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    check_size(w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?)
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
    fn a_size_is_wxh_with_each_side_16_to_4096() {
        assert_eq!(parse_size("800x480"), Ok((800, 480)));
        assert_eq!(parse_size("16x4096"), Ok((16, 4096)));
        for bad in ["100000x100000", "15x480", "800x4097", "0x0"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.contains("16 to 4096"), "{bad}: {err}");
        }
        for bad in ["800", "800x", "x480", "-800x480", "800x480x3"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.contains("not a size WxH"), "{bad}: {err}");
        }
    }
}
