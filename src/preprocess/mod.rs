//! From a camera frame to the model's input: find the ultrasound sector,
//! crop it, and resize it to the square the model was trained on.
//!
//! The sector is found once per clip (or per stable stretch of a live
//! stream), never per frame, so that the crop does not jitter. The resize is
//! an exact area average: every source pixel contributes in proportion to
//! the part of it an output pixel covers. The training script reads frames
//! produced by this very code (`pleura dataset export`), so training and
//! inference see identical pixels. A 2.5D model's input adds two earlier
//! frames of the clip ([`FrameHistory`]).

mod history;
pub mod quality;

pub use history::{FrameHistory, clip_inputs, earlier_offsets, stack_cropped};

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

    /// Intersection over union of two rectangles (0 when disjoint).
    pub fn iou(self, other: Roi) -> f32 {
        let overlap =
            |a0: usize, a1: usize, b0: usize, b1: usize| a1.min(b1).saturating_sub(a0.max(b0));
        let inter = overlap(self.x, self.x + self.w, other.x, other.x + other.w)
            * overlap(self.y, self.y + self.h, other.y, other.y + other.h);
        let union = self.w * self.h + other.w * other.h - inter;
        if union == 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }
}

/// Why a `--roi` is not a region Pleura can score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoiError {
    /// Not four numbers.
    #[error("'{0}' is not a rectangle x,y,w,h in pixels")]
    NotARectangle(String),
    /// Smaller than a sector can be.
    #[error(
        "the region '{text}' is {w}×{h} px: a sector is at least {} px on each side",
        quality::MIN_SECTOR_SIDE
    )]
    TooSmall {
        /// The region as written.
        text: String,
        /// Its width.
        w: usize,
        /// Its height.
        h: usize,
    },
    /// Past the largest frame Pleura reads.
    #[error(
        "the region '{0}' reaches past {max} px, the largest frame side Pleura reads",
        max = crate::frame::SIDES.end()
    )]
    TooFar(String),
}

impl std::str::FromStr for Roi {
    type Err = RoiError;

    /// Parses `x,y,w,h` in pixels: a region at least
    /// [`quality::MIN_SECTOR_SIDE`] on each side that fits a frame of the
    /// largest size Pleura reads ([`crate::frame::SIDES`]). Whether it fits
    /// the frames of a given source is checked on every frame.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || RoiError::NotARectangle(text.to_string());
        let values: Vec<usize> = text
            .split(',')
            .map(|v| v.trim().parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [x, y, w, h] = values[..] else {
            return Err(bad());
        };
        if w < quality::MIN_SECTOR_SIDE || h < quality::MIN_SECTOR_SIDE {
            return Err(RoiError::TooSmall {
                text: text.to_string(),
                w,
                h,
            });
        }
        let max = *crate::frame::SIDES.end() as usize;
        if x.saturating_add(w) > max || y.saturating_add(h) > max {
            return Err(RoiError::TooFar(text.to_string()));
        }
        Ok(Roi { x, y, w, h })
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
/// Up to 32 frames spread over the run are used; frames of another size
/// than the first are ignored.
pub fn detect_sector(frames: &[GrayFrame]) -> Option<Roi> {
    let first = frames.first()?;
    let same_size: Vec<&GrayFrame> = frames
        .iter()
        .filter(|f| f.width == first.width && f.height == first.height)
        .collect();
    let step = same_size.len().div_ceil(DETECTION_FRAMES).max(1);
    let mut stats = SectorStats::new(first.width, first.height);
    for frame in same_size.into_iter().step_by(step) {
        stats.add(frame);
    }
    stats.sector()
}

/// Per-pixel brightness statistics of frames of one size, from which the
/// sector is read. Adding a frame costs two sums per pixel; nothing else
/// is kept, so the memory does not grow with the number of frames.
#[derive(Debug, Clone)]
pub struct SectorStats {
    width: usize,
    height: usize,
    sum: Vec<f32>,
    sum_sq: Vec<f32>,
    frames: usize,
}

impl SectorStats {
    /// Empty statistics for `width × height` frames.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            sum: vec![0.0; width * height],
            sum_sq: vec![0.0; width * height],
            frames: 0,
        }
    }

    /// Frames added so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Adds a frame; returns `false` (and ignores it) when its size differs.
    pub fn add(&mut self, frame: &GrayFrame) -> bool {
        if (frame.width, frame.height) != (self.width, self.height) {
            return false;
        }
        for ((s, s2), &p) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(&frame.pixels) {
            let p = f32::from(p);
            *s += p;
            *s2 += p * p;
        }
        self.frames += 1;
        true
    }

    /// The sector seen so far, or `None` before any frame or when no pixel
    /// stands out. With fewer than 3 frames, motion is not required.
    pub fn sector(&self) -> Option<Roi> {
        self.region(self.frames >= 3)
    }

    /// The bright region seen so far, moving or not (static overlays
    /// included), or `None` before any frame or when no pixel stands out.
    pub fn bright_region(&self) -> Option<Roi> {
        self.region(false)
    }

    /// The region of pixels bright on average, and changing over time when
    /// `check_motion`.
    fn region(&self, check_motion: bool) -> Option<Roi> {
        if self.frames == 0 {
            return None;
        }
        let (w, h) = (self.width, self.height);
        let n = self.frames as f32;
        let mut rows = vec![0usize; h];
        let mut cols = vec![0usize; w];
        for (y, row_count) in rows.iter_mut().enumerate() {
            for (x, col_count) in cols.iter_mut().enumerate() {
                let i = y * w + x;
                let mean = self.sum[i] / n;
                let var = (self.sum_sq[i] / n - mean * mean).max(0.0);
                if mean > ECHO_LEVEL && (!check_motion || var.sqrt() > LIVE_LEVEL) {
                    *row_count += 1;
                    *col_count += 1;
                }
            }
        }
        let (y, rh) = longest_run(&rows)?;
        let (x, cw) = longest_run(&cols)?;
        Some(Roi { x, y, w: cw, h: rh })
    }
}

/// How the sector of a live stream is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorMode {
    /// Found from the first frames of each clip, then kept unless it moves.
    /// Until it is locked, each frame is passed on at once with a
    /// provisional sector, found from the frames so far.
    Auto,
    /// As `Auto`, but the first frames of each clip wait for the lock and
    /// are all cropped to the locked sector: the first score comes
    /// [`LOCK_FRAMES`] frames late.
    Wait,
    /// Given by the user (`--roi`); never searched.
    Fixed(Roi),
}

/// Frames from which the sector of a new clip is found and locked.
pub const LOCK_FRAMES: usize = 32;
/// A provisional sector moves only when one of its edges would move by
/// more than this many pixels (no jitter from frame to frame).
pub const PROVISIONAL_STEP_PX: usize = 4;
/// Frames between two checks that the locked sector has not moved.
const RECHECK_FRAMES: usize = 50;
/// A check "disagrees" when its sector overlaps the locked one less than this.
const MOVED_IOU: f32 = 0.8;
/// Consecutive disagreeing checks after which the new sector is taken
/// (a depth or probe change on the ultrasound machine).
const MOVED_CHECKS: u32 = 2;
/// Consecutive frames of a new size after which the stream is taken to
/// have changed resolution, and the sector is searched again.
const RESIZE_FRAMES: usize = 8;

/// A frame the tracker would not pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {got_width}×{got_height} in a stream of {width}×{height}")]
pub struct SizeMismatch {
    /// Width of the stream.
    pub width: usize,
    /// Height of the stream.
    pub height: usize,
    /// Width of the frame.
    pub got_width: usize,
    /// Height of the frame.
    pub got_height: usize,
}

/// What the tracker passes on, in order.
#[derive(Debug)]
pub enum Tracked {
    /// A frame and the sector to crop it to (`None` when none was found).
    Frame {
        /// The frame.
        frame: GrayFrame,
        /// Its sector.
        sector: Option<Roi>,
        /// Whether the sector is provisional: the clip's is not locked yet.
        provisional: bool,
    },
    /// The clip's sector is locked (`None` when none was found). The
    /// provisional frames passed on before it count in the clip score only
    /// if their sector agrees with it (see [`crate::scoring`]).
    Locked(Option<Roi>),
}

/// Keeps the sector of a live stream steady: found once from the first
/// [`LOCK_FRAMES`] frames of a clip, re-checked every few seconds, and
/// moved only when several checks in a row agree that it has moved. Frames
/// of a different size are refused, until a new size persists.
///
/// In [`SectorMode::Auto`], the frames before the lock are not held back:
/// each goes on at once, cropped to a provisional sector found from the
/// clip's frames so far, which moves only by more than
/// [`PROVISIONAL_STEP_PX`]. The lock itself is the same in both modes, from
/// the same frames.
#[derive(Debug)]
pub struct SectorTracker {
    mode: SectorMode,
    state: TrackState,
    /// A run of frames of another size: that size and how many.
    resize_run: Option<((usize, usize), usize)>,
}

#[derive(Debug)]
enum TrackState {
    /// Before the first frame of a clip.
    Idle,
    /// Collecting the first frames of a clip.
    Locking {
        size: (usize, usize),
        stats: SectorStats,
        /// The frames waiting for the lock ([`SectorMode::Wait`]).
        pending: Vec<GrayFrame>,
        /// The sector the frames so far were cropped to ([`SectorMode::Auto`]).
        provisional: Option<Roi>,
    },
    /// The search is over: the sector, or `None` when none was found.
    Locked {
        roi: Option<Roi>,
        size: (usize, usize),
        recheck: SectorStats,
        disagreeing: u32,
    },
}

impl SectorTracker {
    /// A tracker for a new clip.
    pub fn new(mode: SectorMode) -> Self {
        Self {
            mode,
            state: TrackState::Idle,
            resize_run: None,
        }
    }

    /// The sector frames are currently cropped to, once locked.
    pub fn sector(&self) -> Option<Roi> {
        match (&self.mode, &self.state) {
            (SectorMode::Fixed(roi), _) => Some(*roi),
            (_, TrackState::Locked { roi, .. }) => *roi,
            _ => None,
        }
    }

    /// Takes the next frame of the clip. What can be passed on now is
    /// appended to `ready` in order: this frame (at once with a provisional
    /// sector, or once the sector is locked), any frames that waited for
    /// the lock, and the lock itself.
    pub fn push(&mut self, frame: GrayFrame, ready: &mut Vec<Tracked>) -> Result<(), SizeMismatch> {
        if let SectorMode::Fixed(roi) = self.mode {
            ready.push(Tracked::Frame {
                frame,
                sector: Some(roi),
                provisional: false,
            });
            return Ok(());
        }
        let size = (frame.width, frame.height);
        if let Some(expected) = self.stream_size().filter(|&s| s != size) {
            let run = match self.resize_run {
                Some((run_size, n)) if run_size == size => n + 1,
                _ => 1,
            };
            self.resize_run = Some((size, run));
            if run < RESIZE_FRAMES {
                return Err(SizeMismatch {
                    width: expected.0,
                    height: expected.1,
                    got_width: size.0,
                    got_height: size.1,
                });
            }
            log::info!(
                "stream size changed to {}×{}: finding the sector again",
                size.0,
                size.1
            );
            self.finish(ready);
        }
        self.resize_run = None;
        if let TrackState::Idle = self.state {
            self.state = TrackState::Locking {
                size,
                stats: SectorStats::new(size.0, size.1),
                pending: Vec::new(),
                provisional: None,
            };
        }
        let mut lock_now = false;
        match &mut self.state {
            // Not reached: a clip's first frame started the search above.
            TrackState::Idle => {}
            TrackState::Locking {
                stats,
                pending,
                provisional,
                ..
            } => {
                stats.add(&frame);
                if stats.frames() >= LOCK_FRAMES {
                    pending.push(frame);
                    lock_now = true;
                } else if self.mode == SectorMode::Wait {
                    pending.push(frame);
                } else {
                    // Over a few frames, motion may mark only part of the
                    // sector: too small a part gives way to the bright region.
                    let found = stats
                        .sector()
                        .filter(scorable)
                        .or_else(|| stats.bright_region().filter(scorable));
                    if let Some(found) = found.filter(|&f| {
                        provisional.is_none_or(|p| moved_by(p, f) > PROVISIONAL_STEP_PX)
                    }) {
                        log::info!(
                            "provisional sector {found:?} after {} frames",
                            stats.frames()
                        );
                        *provisional = Some(found);
                    }
                    ready.push(Tracked::Frame {
                        frame,
                        sector: *provisional,
                        provisional: true,
                    });
                }
            }
            TrackState::Locked {
                roi,
                recheck,
                disagreeing,
                ..
            } => {
                recheck.add(&frame);
                if recheck.frames() >= RECHECK_FRAMES {
                    match (recheck.sector(), *roi) {
                        // A sector where there was none (the probe went on
                        // the skin): there is nothing to keep steady.
                        (Some(found), None) => {
                            log::info!("sector found at {found:?}");
                            *roi = Some(found);
                            *disagreeing = 0;
                        }
                        (Some(found), Some(locked)) => {
                            *disagreeing = if found.iou(locked) < MOVED_IOU {
                                *disagreeing + 1
                            } else {
                                0
                            };
                            if *disagreeing >= MOVED_CHECKS {
                                log::info!("sector moved from {locked:?} to {found:?}");
                                *roi = Some(found);
                                *disagreeing = 0;
                            }
                        }
                        (None, _) => *disagreeing = 0,
                    }
                    *recheck = SectorStats::new(size.0, size.1);
                }
                ready.push(Tracked::Frame {
                    frame,
                    sector: *roi,
                    provisional: false,
                });
            }
        }
        if lock_now {
            self.lock(ready);
        }
        Ok(())
    }

    /// Ends the clip: its sector is locked from the frames seen (frames
    /// still waiting get it), and the next frame starts a new search.
    pub fn finish(&mut self, ready: &mut Vec<Tracked>) {
        if matches!(self.state, TrackState::Locking { .. }) {
            self.lock(ready);
        }
        self.state = TrackState::Idle;
        self.resize_run = None;
    }

    fn stream_size(&self) -> Option<(usize, usize)> {
        match &self.state {
            TrackState::Idle => None,
            TrackState::Locking { size, .. } | TrackState::Locked { size, .. } => Some(*size),
        }
    }

    fn lock(&mut self, ready: &mut Vec<Tracked>) {
        let TrackState::Locking {
            size,
            stats,
            pending,
            ..
        } = std::mem::replace(&mut self.state, TrackState::Idle)
        else {
            return;
        };
        let roi = stats.sector();
        match roi {
            Some(roi) => log::debug!("sector locked at {roi:?} after {} frames", stats.frames()),
            None => log::info!("no sector in the first {} frames", stats.frames()),
        }
        ready.push(Tracked::Locked(roi));
        ready.extend(pending.into_iter().map(|frame| Tracked::Frame {
            frame,
            sector: roi,
            provisional: false,
        }));
        self.state = TrackState::Locked {
            roi,
            size,
            recheck: SectorStats::new(size.0, size.1),
            disagreeing: 0,
        };
    }
}

/// Whether a sector is large enough to be scored.
fn scorable(roi: &Roi) -> bool {
    roi.w >= quality::MIN_SECTOR_SIDE && roi.h >= quality::MIN_SECTOR_SIDE
}

/// How far the furthest edge of `b` is from the same edge of `a`, in pixels.
fn moved_by(a: Roi, b: Roi) -> usize {
    [
        a.x.abs_diff(b.x),
        a.y.abs_diff(b.y),
        (a.x + a.w).abs_diff(b.x + b.w),
        (a.y + a.h).abs_diff(b.y + b.h),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
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

    /// A `w × h` frame, black but for moving speckle inside `sector`.
    fn scan(w: usize, h: usize, t: usize, sector: Roi) -> GrayFrame {
        let mut f = frame(w, h, |x, y| {
            let inside = (sector.x..sector.x + sector.w).contains(&x)
                && (sector.y..sector.y + sector.h).contains(&y);
            if inside {
                (60 + ((x * 7 + y * 13 + t * 31) % 90)) as u8
            } else {
                0
            }
        });
        f.seq = t as u64;
        f
    }

    const SECTOR: Roi = Roi {
        x: 10,
        y: 5,
        w: 40,
        h: 30,
    };

    /// The frames passed on: sequence number, sector, provisional.
    fn passed(ready: &[Tracked]) -> Vec<(u64, Option<Roi>, bool)> {
        ready
            .iter()
            .filter_map(|t| match t {
                Tracked::Frame {
                    frame,
                    sector,
                    provisional,
                } => Some((frame.seq, *sector, *provisional)),
                Tracked::Locked(_) => None,
            })
            .collect()
    }

    /// The locks passed on.
    fn locks(ready: &[Tracked]) -> Vec<Option<Roi>> {
        ready
            .iter()
            .filter_map(|t| match t {
                Tracked::Locked(roi) => Some(*roi),
                Tracked::Frame { .. } => None,
            })
            .collect()
    }

    #[test]
    fn waiting_holds_the_first_frames_until_the_sector_is_known() {
        let mut tracker = SectorTracker::new(SectorMode::Wait);
        let mut ready = Vec::new();
        for t in 0..LOCK_FRAMES - 1 {
            tracker.push(scan(64, 48, t, SECTOR), &mut ready).unwrap();
        }
        assert!(ready.is_empty());
        assert_eq!(tracker.sector(), None);
        tracker
            .push(scan(64, 48, LOCK_FRAMES, SECTOR), &mut ready)
            .unwrap();
        assert!(
            matches!(ready[0], Tracked::Locked(Some(SECTOR))),
            "the lock comes first"
        );
        let frames = passed(&ready);
        assert_eq!(frames.len(), LOCK_FRAMES);
        assert!(
            frames
                .iter()
                .all(|&(_, roi, provisional)| roi == Some(SECTOR) && !provisional)
        );
        assert!(
            frames.windows(2).all(|w| w[0].0 < w[1].0),
            "frames keep their order"
        );
    }

    #[test]
    fn auto_passes_every_frame_at_once_with_a_steady_provisional_sector_then_locks_the_same() {
        // A sector large enough to be scored (64 px a side at least).
        let sector = Roi {
            x: 10,
            y: 5,
            w: 100,
            h: 80,
        };
        let frames: Vec<GrayFrame> = (0..LOCK_FRAMES + 3)
            .map(|t| scan(128, 96, t, sector))
            .collect();
        let mut waiting = SectorTracker::new(SectorMode::Wait);
        let mut auto = SectorTracker::new(SectorMode::Auto);
        let (mut waited, mut ready) = (Vec::new(), Vec::new());
        for (t, frame) in frames.into_iter().enumerate() {
            waiting.push(frame.clone(), &mut waited).unwrap();
            let before = ready.len();
            auto.push(frame, &mut ready).unwrap();
            assert!(ready.len() > before, "frame {t} passed on at once");
        }
        let auto_frames = passed(&ready);
        assert_eq!(auto_frames.len(), LOCK_FRAMES + 3);
        assert!(
            auto_frames[..LOCK_FRAMES - 1]
                .iter()
                .all(|&(_, roi, provisional)| provisional && roi.is_some())
        );
        assert!(
            auto_frames[LOCK_FRAMES - 1..]
                .iter()
                .all(|&(_, roi, provisional)| !provisional && roi == Some(sector))
        );
        assert_eq!(
            locks(&ready),
            locks(&waited),
            "the same lock, from the same frames"
        );
        assert_eq!(auto.sector(), waiting.sector());
        // The lock comes right before the first frame cropped to it.
        let lock = ready
            .iter()
            .position(|t| matches!(t, Tracked::Locked(_)))
            .unwrap();
        assert!(matches!(
            &ready[lock + 1],
            Tracked::Frame {
                provisional: false,
                ..
            }
        ));
        // Steady: the provisional sector changed at most a few times, each
        // time by more than the step.
        let sectors: Vec<Roi> = auto_frames[..LOCK_FRAMES - 1]
            .iter()
            .filter_map(|f| f.1)
            .collect();
        for pair in sectors.windows(2) {
            assert!(pair[0] == pair[1] || moved_by(pair[0], pair[1]) > PROVISIONAL_STEP_PX);
        }
    }

    #[test]
    fn a_clip_shorter_than_the_lock_window_is_locked_at_its_end() {
        for mode in [SectorMode::Wait, SectorMode::Auto] {
            let mut tracker = SectorTracker::new(mode);
            let mut ready = Vec::new();
            for t in 0..5 {
                tracker.push(scan(64, 48, t, SECTOR), &mut ready).unwrap();
            }
            tracker.finish(&mut ready);
            assert_eq!(passed(&ready).len(), 5, "{mode:?}");
            assert_eq!(locks(&ready), vec![Some(SECTOR)], "{mode:?}");
            if mode == SectorMode::Wait {
                assert_eq!(passed(&ready)[0].1, Some(SECTOR));
            }
        }
    }

    #[test]
    fn a_frame_of_another_size_is_refused_until_the_new_size_persists() {
        let mut tracker = SectorTracker::new(SectorMode::Auto);
        let mut ready = Vec::new();
        for t in 0..LOCK_FRAMES {
            tracker.push(scan(64, 48, t, SECTOR), &mut ready).unwrap();
        }
        let err = tracker
            .push(scan(32, 48, 99, SECTOR), &mut ready)
            .unwrap_err();
        assert_eq!((err.width, err.got_width), (64, 32));
        tracker.push(scan(64, 48, 100, SECTOR), &mut ready).unwrap();
        // A lasting change of resolution is accepted after RESIZE_FRAMES.
        let small = Roi {
            x: 4,
            y: 4,
            w: 20,
            h: 20,
        };
        let refused = (0..RESIZE_FRAMES)
            .filter(|&t| tracker.push(scan(32, 32, t, small), &mut ready).is_err())
            .count();
        assert_eq!(refused, RESIZE_FRAMES - 1);
        tracker.finish(&mut ready);
        assert_eq!(locks(&ready).last(), Some(&Some(small)));
    }

    #[test]
    fn the_sector_moves_only_after_repeated_checks_agree() {
        let mut tracker = SectorTracker::new(SectorMode::Auto);
        let mut ready = Vec::new();
        let moved = Roi {
            x: 20,
            y: 10,
            w: 40,
            h: 36,
        };
        for t in 0..LOCK_FRAMES {
            tracker.push(scan(64, 48, t, SECTOR), &mut ready).unwrap();
        }
        for t in 0..RECHECK_FRAMES {
            tracker.push(scan(64, 48, t, moved), &mut ready).unwrap();
        }
        assert_eq!(tracker.sector(), Some(SECTOR), "one check is not enough");
        for t in 0..RECHECK_FRAMES {
            tracker.push(scan(64, 48, t, moved), &mut ready).unwrap();
        }
        assert_eq!(tracker.sector(), Some(moved));
    }

    #[test]
    fn a_fixed_roi_passes_every_frame_at_once() {
        let roi = Roi {
            x: 1,
            y: 2,
            w: 3,
            h: 4,
        };
        let mut tracker = SectorTracker::new(SectorMode::Fixed(roi));
        let mut ready = Vec::new();
        tracker.push(scan(64, 48, 0, SECTOR), &mut ready).unwrap();
        tracker.push(scan(16, 16, 1, SECTOR), &mut ready).unwrap();
        assert_eq!(
            passed(&ready),
            vec![(0, Some(roi), false), (1, Some(roi), false)]
        );
    }

    #[test]
    fn rois_parse_from_the_command_line() {
        assert_eq!(
            "1,2,300,400".parse::<Roi>().unwrap(),
            Roi {
                x: 1,
                y: 2,
                w: 300,
                h: 400
            }
        );
        assert!("1,2,0,40".parse::<Roi>().is_err());
        assert!("1,2,3".parse::<Roi>().is_err());
    }

    #[test]
    fn a_region_too_small_to_be_a_sector_or_past_any_frame_is_refused() {
        // Issue 16: a 1-pixel region was scored "stable".
        for text in ["0,0,1,1", "10,10,63,200", "10,10,200,63"] {
            let err = text.parse::<Roi>().unwrap_err();
            assert!(err.to_string().contains("at least 64 px"), "{text}: {err}");
        }
        for text in [
            "4000,0,200,200",
            "0,4033,64,64",
            &format!("{},0,64,64", usize::MAX),
        ] {
            let err = text.parse::<Roi>().unwrap_err();
            assert!(err.to_string().contains("4096"), "{text}: {err}");
        }
        assert!("4032,4032,64,64".parse::<Roi>().is_ok());
    }

    #[test]
    fn iou_of_a_rectangle_with_itself_is_one_and_with_a_disjoint_one_zero() {
        let other = Roi {
            x: 100,
            y: 100,
            w: 5,
            h: 5,
        };
        assert_eq!(SECTOR.iou(SECTOR), 1.0);
        assert_eq!(SECTOR.iou(other), 0.0);
    }
}
