//! From a camera frame to the model's input: find the ultrasound sector,
//! crop it, and resize it to the square the model was trained on.
//!
//! The sector is found once per clip (or per stable stretch of a live
//! stream), never per frame, so that the crop does not jitter. The resize is
//! an exact area average: every source pixel contributes in proportion to
//! the part of it an output pixel covers. The training script reads frames
//! produced by this very code (`pleura dataset export`), so training and
//! inference see identical pixels.

use crate::frame::GrayFrame;

/// A rectangle of interest in frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Roi {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in pixels (at least 1).
    pub w: usize,
    /// Height in pixels (at least 1).
    pub h: usize,
}

impl Roi {
    /// The whole frame.
    pub fn full(frame: &GrayFrame) -> Self {
        Self {
            x: 0,
            y: 0,
            w: frame.width,
            h: frame.height,
        }
    }

    /// This rectangle clipped to a `width × height` frame, or `None` when
    /// nothing of it is left.
    pub fn clipped(self, width: usize, height: usize) -> Option<Self> {
        let x1 = (self.x + self.w).min(width);
        let y1 = (self.y + self.h).min(height);
        (self.x < x1 && self.y < y1).then_some(Self {
            x: self.x,
            y: self.y,
            w: x1 - self.x,
            h: y1 - self.y,
        })
    }
}

/// Mean brightness (0–255) above which a pixel may belong to the sector.
const ECHO_LEVEL: f32 = 12.0;
/// Temporal standard deviation above which a pixel is live image, not UI.
const LIVE_LEVEL: f32 = 1.5;
/// A row or column belongs to the sector when at least this fraction of
/// the busiest row or column is active in it.
const PROFILE_FRACTION: f32 = 0.2;
/// Frames sampled for detection.
const DETECTION_FRAMES: usize = 32;

/// Finds the ultrasound sector in a run of frames of one clip.
///
/// A pixel is part of the sector when it is bright on average and, in a
/// moving clip, changes over time: static overlays (text, scales, logos)
/// are bright but constant. The sector is the longest run of rows and of
/// columns whose count of such pixels is a fair fraction of the maximum.
/// Falls back to the whole frame when nothing stands out.
pub fn detect_sector(frames: &[GrayFrame]) -> Option<Roi> {
    let first = frames.first()?;
    let (w, h) = (first.width, first.height);
    let same_size: Vec<&GrayFrame> = frames
        .iter()
        .filter(|f| f.width == w && f.height == h)
        .collect();
    let step = same_size.len().div_ceil(DETECTION_FRAMES).max(1);
    let sample: Vec<&GrayFrame> = same_size.into_iter().step_by(step).collect();
    let n = sample.len() as f32;
    let mut sum = vec![0f32; w * h];
    let mut sum_sq = vec![0f32; w * h];
    for frame in &sample {
        for (i, &p) in frame.pixels.iter().enumerate() {
            let p = f32::from(p);
            sum[i] += p;
            sum_sq[i] += p * p;
        }
    }
    let check_motion = sample.len() >= 3;
    let active: Vec<bool> = (0..w * h)
        .map(|i| {
            let mean = sum[i] / n;
            let var = (sum_sq[i] / n - mean * mean).max(0.0);
            mean > ECHO_LEVEL && (!check_motion || var.sqrt() > LIVE_LEVEL)
        })
        .collect();
    let mut rows = vec![0usize; h];
    let mut cols = vec![0usize; w];
    for y in 0..h {
        for x in 0..w {
            if active[y * w + x] {
                rows[y] += 1;
                cols[x] += 1;
            }
        }
    }
    let (y, rh) = longest_run(&rows)?;
    let (x, cw) = longest_run(&cols)?;
    Some(Roi { x, y, w: cw, h: rh })
}

/// The longest run of entries at or above `PROFILE_FRACTION` of the maximum.
fn longest_run(profile: &[usize]) -> Option<(usize, usize)> {
    let max = *profile.iter().max()?;
    if max == 0 {
        return None;
    }
    let threshold = (max as f32 * PROFILE_FRACTION).max(1.0);
    let mut best = (0, 0);
    let mut start = None;
    for (i, &v) in profile.iter().chain(std::iter::once(&0)).enumerate() {
        match (v as f32 >= threshold, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 {
                    best = (s, i - s);
                }
                start = None;
            }
            _ => {}
        }
    }
    (best.1 > 0).then_some(best)
}

/// Crops `roi` out of `frame` and resizes it to `size × size` by exact area
/// averaging, rounding to 8 bits. Returns `None` when the ROI misses the frame.
pub fn crop_resize(frame: &GrayFrame, roi: Roi, size: usize) -> Option<Vec<u8>> {
    let roi = roi.clipped(frame.width, frame.height)?;
    let xs = area_weights(roi.w, size);
    let ys = area_weights(roi.h, size);
    // Horizontal pass over the ROI rows, then the vertical pass.
    let mut rows = vec![0f32; roi.h * size];
    for sy in 0..roi.h {
        let src = &frame.pixels[(roi.y + sy) * frame.width + roi.x..][..roi.w];
        for (ox, taps) in xs.iter().enumerate() {
            rows[sy * size + ox] = taps.iter().map(|&(i, wt)| f32::from(src[i]) * wt).sum();
        }
    }
    let mut out = vec![0u8; size * size];
    for (oy, taps) in ys.iter().enumerate() {
        for ox in 0..size {
            let v: f32 = taps.iter().map(|&(i, wt)| rows[i * size + ox] * wt).sum();
            out[oy * size + ox] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Some(out)
}

/// For each of `dst` output cells, the source indices and weights (summing
/// to 1) of the `src` cells it overlaps when both span the same length.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).min(src);
            (first..last)
                .map(|i| {
                    let overlap = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                    (i, (overlap / scale) as f32)
                })
                .filter(|&(_, w)| w > 0.0)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> GrayFrame {
        let pixels = (0..w * h).map(|i| f(i % w, i / w)).collect();
        GrayFrame::new(w, h, pixels, 0).unwrap()
    }

    #[test]
    fn area_resize_preserves_a_flat_image() {
        let f = frame(350, 350, |_, _| 77);
        let out = crop_resize(&f, Roi::full(&f), 128).unwrap();
        assert!(out.iter().all(|&p| p == 77));
    }

    #[test]
    fn area_resize_averages_blocks_exactly() {
        // 4×4 → 2×2 averages each 2×2 block.
        let f = frame(4, 4, |x, y| if (x < 2) == (y < 2) { 200 } else { 100 });
        assert_eq!(
            crop_resize(&f, Roi::full(&f), 2).unwrap(),
            vec![200, 100, 100, 200]
        );
    }

    #[test]
    fn area_resize_upsamples_by_replication() {
        let f = frame(2, 1, |x, _| if x == 0 { 10 } else { 250 });
        let roi = Roi::full(&f);
        let out = crop_resize(&f, roi, 4).unwrap();
        assert_eq!(&out[..4], &[10, 10, 250, 250]);
    }

    #[test]
    fn roi_outside_the_frame_is_refused() {
        let f = frame(10, 10, |_, _| 0);
        let roi = Roi {
            x: 20,
            y: 0,
            w: 5,
            h: 5,
        };
        assert!(crop_resize(&f, roi, 4).is_none());
    }

    #[test]
    fn sector_detection_ignores_static_text_and_black_border() {
        // A moving speckle square at (40..120, 30..110) inside a black frame
        // with a bright static "label" at the top left.
        let frames: Vec<GrayFrame> = (0..8)
            .map(|t| {
                frame(160, 140, |x, y| {
                    if (40..120).contains(&x) && (30..110).contains(&y) {
                        (60 + ((x * 7 + y * 13 + t * 31) % 90)) as u8
                    } else if x < 30 && y < 8 {
                        255
                    } else {
                        0
                    }
                })
            })
            .collect();
        let roi = detect_sector(&frames).unwrap();
        assert_eq!(
            roi,
            Roi {
                x: 40,
                y: 30,
                w: 80,
                h: 80
            }
        );
    }
}
