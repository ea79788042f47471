//! Which frames may be scored at all.
//!
//! A frame that cannot be lung ultrasound gets no score: the network was
//! trained on scans, and on a blank screen it answers "0, healthy" with
//! high confidence. Every frame passes these checks, in this order, before
//! the network sees it; the first that fails names the [`Rejection`]:
//!
//! | check | rejected when | reason |
//! |---|---|---|
//! | sector | no bright, moving region was found in the clip | `no_sector` |
//! | sector size | the sector (found, or `--roi`) is under [`MIN_SECTOR_SIDE`] px on a side | `small_sector` |
//! | sector fit | a `--roi` does not lie inside the frame | `roi_outside_frame` |
//! | echo | under [`MIN_ECHO_FRACTION`] of the cropped sector shows any echo | `no_image` |
//! | contrast | the crop is lit (mean over 12) but its standard deviation is under [`MIN_CONTRAST`] gray levels | `no_contrast` |
//! | exposure | the crop's mean is over [`MAX_MEAN`] (a white or saturated screen) | `overexposed` |
//! | motion | the crop has not changed for [`FROZEN_FRAMES`] frames (a frozen scanner, a still) | `frozen` |
//!
//! The limits lie outside what the development clips show: over every
//! frame of the BLUES and POCUS clips, real scans have an echo fraction of
//! at least 0.03 (a dark frame showing little but the pleura), a standard
//! deviation of at least 7.8 when lit and a mean of at most 120. The black lead-in
//! frames that open some recordings (one to six, mean gray under 1) are
//! rightly rejected; `tests/frame_checks.rs` checks that nothing else is.

use super::{Roi, crop_resize};
use crate::frame::GrayFrame;
use std::sync::Arc;

/// Smallest sector side, in pixels, that is scored. Below it the model
/// would see a few pixels blown up to its input: a clip of 1×1 to 16 px
/// was scored "stable" before this check.
pub const MIN_SECTOR_SIDE: usize = 64;
/// A pixel brighter than this (0–255) shows an echo.
const ECHO_PIXEL: u8 = 12;
/// Fewer echo pixels than this fraction of the crop is no image (a black
/// screen, a probe in the air). Development scans: at least 0.03, in a
/// dark POCUS clip whose pleura is all that shows for a few frames.
pub const MIN_ECHO_FRACTION: f32 = 0.01;
/// A lit crop (mean over 12) with a smaller standard deviation, in gray
/// levels, is a flat screen. Development scans that bright: at least 7.8.
pub const MIN_CONTRAST: f32 = 4.0;
/// A crop with a larger mean brightness (0–255) is a white or saturated
/// screen, far outside the training data. Development scans: at most 120.
pub const MAX_MEAN: f32 = 160.0;
/// Consecutive unchanged frames after which the picture is frozen: two
/// seconds at 25 fps. The first of them are still scored, as a clinician's
/// hand is not always moving.
pub const FROZEN_FRAMES: usize = 50;
/// Two crops whose mean absolute difference is below this, in gray levels,
/// are the same picture (a freeze on the scanner, or a still being
/// replayed; a live scan changes by more between frames).
const UNCHANGED: f32 = 0.1;

/// Why a frame gets no score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No ultrasound sector was found in the clip.
    NoSector,
    /// The sector is too small to be a scan.
    SmallSector {
        /// Its width.
        w: usize,
        /// Its height.
        h: usize,
    },
    /// The `--roi` does not lie inside the frame.
    RoiOutsideFrame {
        /// The region asked for.
        roi: Roi,
        /// The frame's width.
        width: usize,
        /// The frame's height.
        height: usize,
    },
    /// (Almost) nothing in the sector shows an echo.
    NoImage,
    /// The sector is flat: no contrast.
    NoContrast,
    /// The sector is white or saturated.
    Overexposed,
    /// The picture has not changed for [`FROZEN_FRAMES`] frames.
    Frozen,
    /// The frame's size differs from the stream's (until the new size
    /// persists and the sector is searched again).
    SizeChanged,
}

impl Rejection {
    /// A short stable key for reports and logs, e.g. `no_image`.
    pub fn key(self) -> &'static str {
        match self {
            Rejection::NoSector => "no_sector",
            Rejection::SmallSector { .. } => "small_sector",
            Rejection::RoiOutsideFrame { .. } => "roi_outside_frame",
            Rejection::NoImage => "no_image",
            Rejection::NoContrast => "no_contrast",
            Rejection::Overexposed => "overexposed",
            Rejection::Frozen => "frozen",
            Rejection::SizeChanged => "size_changed",
        }
    }

    /// What the bedside screen says, in capitals, for a gloved reader
    /// across the bed.
    pub fn banner(self) -> &'static str {
        match self {
            Rejection::Frozen => "FROZEN IMAGE - CHECK PROBE",
            Rejection::RoiOutsideFrame { .. } => "NO IMAGE - CHECK ROI",
            Rejection::SizeChanged => "NO IMAGE - VIDEO CHANGED",
            _ => "NO IMAGE - CHECK PROBE",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rejection::NoSector => write!(f, "no ultrasound sector found"),
            Rejection::SmallSector { w, h } => write!(
                f,
                "the sector is {w}×{h} px, under the {MIN_SECTOR_SIDE} px a side a scan needs"
            ),
            Rejection::RoiOutsideFrame { roi, width, height } => write!(
                f,
                "the region x={} y={} w={} h={} does not lie inside the {width}×{height} frame",
                roi.x, roi.y, roi.w, roi.h
            ),
            Rejection::NoImage => write!(f, "no image: (almost) no echo in the sector"),
            Rejection::NoContrast => write!(f, "no contrast: the sector is flat"),
            Rejection::Overexposed => write!(f, "overexposed: the sector is white or saturated"),
            Rejection::Frozen => write!(
                f,
                "frozen: the picture has not changed for {FROZEN_FRAMES} frames"
            ),
            Rejection::SizeChanged => write!(f, "the frame's size differs from the stream's"),
        }
    }
}

/// A frame that gets no score, on its way to the display and the report.
#[derive(Debug)]
pub struct RejectedFrame {
    /// The clip it belongs to.
    pub clip: Arc<str>,
    /// The frame as captured.
    pub frame: GrayFrame,
    /// Why it gets no score.
    pub reason: Rejection,
}

/// Checks a frame of one clip and, when it passes, crops and resizes its
/// sector to the model's `size × size` input. Keeps what the motion check
/// needs between frames: one per clip.
#[derive(Debug, Default)]
pub struct FrameGate {
    previous: Vec<u8>,
    unchanged: usize,
}

impl FrameGate {
    /// A gate for a new clip.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sector and the model's input for `frame` cropped to it
    /// (`sector` is `None` when the clip has none), or why the frame gets
    /// no score.
    pub fn admit(
        &mut self,
        frame: &GrayFrame,
        sector: Option<Roi>,
        size: usize,
    ) -> Result<(Roi, Vec<u8>), Rejection> {
        let roi = sector.ok_or(Rejection::NoSector)?;
        check_sector(roi, frame.width, frame.height)?;
        let input = crop_resize(frame, roi, size).ok_or(Rejection::RoiOutsideFrame {
            roi,
            width: frame.width,
            height: frame.height,
        })?;
        check_picture(&input)?;
        self.check_motion(&input)?;
        Ok((roi, input))
    }

    /// Counts how long the picture has not changed; a frame past
    /// [`FROZEN_FRAMES`] unchanged ones is rejected.
    fn check_motion(&mut self, input: &[u8]) -> Result<(), Rejection> {
        let same = self.previous.len() == input.len()
            && mean_abs_difference(&self.previous, input) < UNCHANGED;
        self.unchanged = if same { self.unchanged + 1 } else { 0 };
        self.previous.clear();
        self.previous.extend_from_slice(input);
        if self.unchanged >= FROZEN_FRAMES {
            return Err(Rejection::Frozen);
        }
        Ok(())
    }
}

/// Checks that a sector is large enough and lies inside a `width × height`
/// frame.
pub fn check_sector(roi: Roi, width: usize, height: usize) -> Result<(), Rejection> {
    if roi.w < MIN_SECTOR_SIDE || roi.h < MIN_SECTOR_SIDE {
        return Err(Rejection::SmallSector { w: roi.w, h: roi.h });
    }
    if roi.x.saturating_add(roi.w) > width || roi.y.saturating_add(roi.h) > height {
        return Err(Rejection::RoiOutsideFrame { roi, width, height });
    }
    Ok(())
}

/// Checks that a cropped sector looks like a scan: echo, contrast, and a
/// brightness inside what the model was trained on.
pub fn check_picture(pixels: &[u8]) -> Result<(), Rejection> {
    if pixels.is_empty() {
        return Err(Rejection::NoImage);
    }
    let n = pixels.len() as f32;
    let echo = pixels.iter().filter(|&&p| p > ECHO_PIXEL).count() as f32 / n;
    let mean = pixels.iter().map(|&p| f32::from(p)).sum::<f32>() / n;
    let variance = pixels
        .iter()
        .map(|&p| (f32::from(p) - mean).powi(2))
        .sum::<f32>()
        / n;
    if mean > MAX_MEAN {
        return Err(Rejection::Overexposed);
    }
    if echo < MIN_ECHO_FRACTION {
        return Err(Rejection::NoImage);
    }
    // A lit but flat field (a gray or white screen). A dark scan can have a
    // small spread too (little but the pleura shows); its echo decides.
    if mean > f32::from(ECHO_PIXEL) && variance.sqrt() < MIN_CONTRAST {
        return Err(Rejection::NoContrast);
    }
    Ok(())
}

fn mean_abs_difference(a: &[u8], b: &[u8]) -> f32 {
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f32 / a.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> GrayFrame {
        let pixels = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y));
        GrayFrame::new(w, h, pixels.collect(), 0).unwrap()
    }

    /// A plausible scan: speckle-like texture over a dark background.
    fn scan(w: usize, h: usize, t: usize) -> GrayFrame {
        frame(w, h, |x, y| {
            let v = (x * 7 + y * 13 + t * 31) % 97;
            (20 + v) as u8
        })
    }

    fn full(w: usize, h: usize) -> Option<Roi> {
        Some(Roi { x: 0, y: 0, w, h })
    }

    #[test]
    fn a_scan_is_admitted_and_cropped_to_the_model_input() {
        let mut gate = FrameGate::new();
        let (_, input) = gate.admit(&scan(200, 160, 0), full(200, 160), 128).unwrap();
        assert_eq!(input.len(), 128 * 128);
    }

    #[test]
    fn blank_screens_get_no_score_whatever_their_gray() {
        let mut gate = FrameGate::new();
        let cases = [(0u8, Rejection::NoImage), (8, Rejection::NoImage)];
        for (gray, want) in cases {
            let f = frame(200, 160, |_, _| gray);
            assert_eq!(
                gate.admit(&f, full(200, 160), 128),
                Err(want),
                "gray {gray}"
            );
        }
        for gray in [40u8, 128] {
            let f = frame(200, 160, |_, _| gray);
            assert_eq!(
                gate.admit(&f, full(200, 160), 128),
                Err(Rejection::NoContrast),
                "gray {gray}"
            );
        }
        for gray in [200u8, 255] {
            let f = frame(200, 160, |_, _| gray);
            assert_eq!(
                gate.admit(&f, full(200, 160), 128),
                Err(Rejection::Overexposed),
                "gray {gray}"
            );
        }
    }

    #[test]
    fn a_black_screen_with_a_little_text_is_no_image() {
        let f = frame(200, 160, |x, y| if x < 20 && y < 8 { 255 } else { 0 });
        assert_eq!(check_picture(&f.pixels), Err(Rejection::NoImage));
    }

    #[test]
    fn slivers_and_specks_are_too_small_to_be_a_sector() {
        let mut gate = FrameGate::new();
        for (w, h) in [(1, 1), (2, 2), (16, 200), (200, 16), (63, 200), (200, 63)] {
            let f = scan(w, h, 0);
            assert_eq!(
                gate.admit(&f, full(w, h), 128),
                Err(Rejection::SmallSector { w, h }),
                "{w}×{h}"
            );
        }
        assert!(gate.admit(&scan(64, 64, 0), full(64, 64), 128).is_ok());
    }

    #[test]
    fn a_region_outside_the_frame_is_refused_not_clamped() {
        let mut gate = FrameGate::new();
        let roi = Roi {
            x: 100,
            y: 0,
            w: 150,
            h: 100,
        };
        assert_eq!(
            gate.admit(&scan(200, 160, 0), Some(roi), 128),
            Err(Rejection::RoiOutsideFrame {
                roi,
                width: 200,
                height: 160
            })
        );
    }

    #[test]
    fn no_sector_means_no_score() {
        let mut gate = FrameGate::new();
        assert_eq!(
            gate.admit(&scan(200, 160, 0), None, 128),
            Err(Rejection::NoSector)
        );
    }

    #[test]
    fn a_frozen_picture_is_scored_for_two_seconds_then_rejected_until_it_moves() {
        let mut gate = FrameGate::new();
        let still = scan(200, 160, 0);
        let results: Vec<bool> = (0..FROZEN_FRAMES + 5)
            .map(|_| gate.admit(&still, full(200, 160), 128).is_ok())
            .collect();
        assert!(results[..FROZEN_FRAMES].iter().all(|&ok| ok));
        assert!(results[FROZEN_FRAMES..].iter().all(|&ok| !ok));
        assert_eq!(
            gate.admit(&still, full(200, 160), 128),
            Err(Rejection::Frozen)
        );
        assert!(gate.admit(&scan(200, 160, 1), full(200, 160), 128).is_ok());
    }
}
