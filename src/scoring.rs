//! From frame predictions to scores over time.
//!
//! A clip is one zone of the chest scanned for a few seconds. How its score
//! is decided is the model file's rule:
//!
//! * `mean_probability` (v2, and v3 as shipped): the mean of the frame
//!   probabilities (soft voting), so that a single noisy frame cannot set
//!   it.
//! * `attention_ordinal`: the clip head ([`crate::model::heads`]) decides
//!   over a window of the clip's frames, weighing each by its attention:
//!   the Soldati score is the worst finding that persists, not the average
//!   frame. The window holds at most [`CLIP_WINDOW`] frames spread evenly
//!   over the clip so far, as the model was trained and evaluated; once
//!   they are [`MAX_WINDOW_STRIDE`] frames apart it slides, keeping the
//!   most recent (about 7.7 s at 25 fps).
//!
//! With the v3 heads, the clip's findings are pooled over the same window.
//! The confidence is the probability of the chosen score. While a clip
//! plays, [`ClipTracker`] also keeps a smoothed live score for the screen,
//! and says when the clip score has become stable: the moment a zone's
//! score can be recorded.

use crate::frame::GrayFrame;
use crate::model::FramePrediction;
use crate::model::SCORE_CLASSES;
use crate::model::argmax;
#[cfg(test)]
use crate::model::heads::ClipTerms;
use crate::model::heads::{self, FINDINGS, HeadOutputs};
use crate::preprocess::Roi;
use std::collections::VecDeque;
use std::sync::Arc;

/// Most frames a v3 clip decision looks at (the trainer's frames per clip).
pub const CLIP_WINDOW: usize = 48;
/// Widest spacing, in frames, of the window's frames before it slides.
pub const MAX_WINDOW_STRIDE: usize = 4;

/// The score of one clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipScore {
    /// Soldati score 0–3.
    pub score: u8,
    /// Probability of that score.
    pub confidence: f32,
    /// Probability of each score: the mean over frames (v2) or the clip
    /// head's ordinal model (v3).
    pub probs: [f32; SCORE_CLASSES],
    /// Frames that contributed.
    pub frames: usize,
}

/// The score of a whole clip, by the model's rule; `None` for a clip
/// without frames.
pub fn clip_score(frames: &[FramePrediction]) -> Option<ClipScore> {
    let mut tracker = ClipTracker::new(0);
    frames.iter().map(|f| tracker.update(f).clip).last()
}

/// A whole clip's findings ([`FINDINGS`] order, probabilities), by the
/// same window as its score; `None` without frames or v3 heads.
pub fn clip_findings(frames: &[FramePrediction]) -> Option<[f32; FINDINGS.len()]> {
    let mut tracker = ClipTracker::new(0);
    frames.iter().map(|f| tracker.update(f).findings).last()?
}

/// Weight of the newest frame in the smoothed live score (an exponential
/// moving average: about the last 1/α frames count).
pub const LIVE_SMOOTHING: f32 = 0.2;
/// Frames a clip needs before its score can be called stable.
pub const STABLE_MIN_FRAMES: usize = 16;
/// Consecutive frames over which the clip score must not change to be stable.
pub const STABLE_FRAMES: usize = 16;

/// The scores after one more frame of a clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScoreUpdate {
    /// The smoothed live score 0–3.
    pub live_score: u8,
    /// The smoothed probabilities behind it.
    pub live_probs: [f32; SCORE_CLASSES],
    /// The clip score so far.
    pub clip: ClipScore,
    /// Whether the clip score has stopped changing.
    pub stable: bool,
    /// Mean fraction of the sector covered by each segmentation class so far.
    pub class_fractions: Vec<f32>,
    /// The clip's findings so far ([`FINDINGS`] order, probabilities), for
    /// a model with the v3 heads.
    pub findings: Option<[f32; FINDINGS.len()]>,
}

/// A frame after the scoring stage: what the display and the record get.
#[derive(Debug, Clone)]
pub struct ScoredFrame {
    /// Name of the clip it belongs to.
    pub clip: Arc<str>,
    /// The frame as captured.
    pub frame: GrayFrame,
    /// The sector it was cropped to.
    pub sector: Roi,
    /// Whether that sector was provisional (the clip's was not locked yet):
    /// the frame is shown, but counts in the clip score only once the
    /// locked sector agrees with it.
    pub provisional: bool,
    /// The network's output for it.
    pub prediction: FramePrediction,
    /// The scores after it.
    pub scores: ScoreUpdate,
}

/// The frames a v3 clip decision looks at: at most [`CLIP_WINDOW`], spread
/// evenly over the clip, then sliding once [`MAX_WINDOW_STRIDE`] apart.
#[derive(Debug, Clone, Default)]
struct HeadWindow {
    slots: VecDeque<HeadOutputs>,
    /// Every `stride`-th frame of the clip enters the window.
    stride: usize,
    /// Frames offered so far.
    offered: usize,
}

impl HeadWindow {
    fn push(&mut self, outputs: HeadOutputs) {
        let stride = self.stride.max(1);
        self.offered += 1;
        if !(self.offered - 1).is_multiple_of(stride) {
            return;
        }
        if self.slots.len() == CLIP_WINDOW {
            if stride < MAX_WINDOW_STRIDE {
                // Keep every other frame: the kept ones are 2·stride apart.
                let mut index = 0;
                self.slots.retain(|_| {
                    index += 1;
                    index % 2 == 1
                });
                self.stride = 2 * stride;
                if !(self.offered - 1).is_multiple_of(self.stride) {
                    return;
                }
            } else {
                self.slots.pop_front();
            }
        }
        self.slots.push_back(outputs);
    }
}

/// The smallest overlap (intersection over union) of a provisional frame's
/// sector with the locked one for the frame to count in the clip score.
pub const AGREEING_IOU: f32 = 0.9;

/// The running scores of one clip, in constant memory.
///
/// Frames scored on a provisional sector (before the clip's sector is
/// locked, see [`crate::preprocess::SectorTracker`]) move the live score at
/// once, but are held out of the clip score until the lock: then each
/// counts, in order, if its sector overlaps the locked one by at least
/// [`AGREEING_IOU`], and is dropped otherwise. Meanwhile the clip score
/// shown is what it would be if they all counted, never stable.
#[derive(Debug, Clone)]
pub struct ClipTracker {
    prob_sums: [f64; SCORE_CLASSES],
    class_sums: Vec<f64>,
    frames: usize,
    live: Option<[f32; SCORE_CLASSES]>,
    last_score: Option<u8>,
    unchanged: usize,
    window: HeadWindow,
    /// Provisional frames waiting for the lock (at most
    /// [`crate::preprocess::LOCK_FRAMES`]), with their sectors.
    held: Vec<(Roi, FramePrediction)>,
    /// While frames are held: this tracker with all of them counted, the
    /// clip score shown until the lock.
    tentative: Option<Box<ClipTracker>>,
}

impl ClipTracker {
    /// A tracker for a new clip, for a model with `seg_classes` segmentation classes.
    pub fn new(seg_classes: usize) -> Self {
        Self {
            prob_sums: [0.0; SCORE_CLASSES],
            class_sums: vec![0.0; seg_classes],
            frames: 0,
            live: None,
            last_score: None,
            unchanged: 0,
            window: HeadWindow::default(),
            held: Vec::new(),
            tentative: None,
        }
    }

    /// Adds the next frame's prediction.
    pub fn update(&mut self, frame: &FramePrediction) -> ScoreUpdate {
        self.follow_live(frame);
        self.count(frame);
        self.report()
    }

    /// Adds the next frame's prediction, made on the provisional `sector`:
    /// it moves the live score now and waits for [`Self::settle`] to count.
    pub fn update_provisional(&mut self, frame: &FramePrediction, sector: Roi) -> ScoreUpdate {
        self.follow_live(frame);
        self.held.push((sector, frame.clone()));
        let mut tentative = self
            .tentative
            .take()
            .unwrap_or_else(|| Box::new(self.clone_counts()));
        tentative.live = self.live;
        tentative.count(frame);
        let mut update = tentative.report();
        update.stable = false;
        self.tentative = Some(tentative);
        update
    }

    /// This tracker's counts and scores, without its held frames.
    fn clone_counts(&self) -> ClipTracker {
        ClipTracker {
            prob_sums: self.prob_sums,
            class_sums: self.class_sums.clone(),
            frames: self.frames,
            live: self.live,
            last_score: self.last_score,
            unchanged: self.unchanged,
            window: self.window.clone(),
            held: Vec::new(),
            tentative: None,
        }
    }

    /// The clip's sector is locked at `locked` (`None`: none was found):
    /// the provisional frames whose sector agrees with it count, in order;
    /// the others are dropped. Returns the scores after them, `None` when
    /// no frame was held.
    pub fn settle(&mut self, locked: Option<Roi>) -> Option<ScoreUpdate> {
        if self.held.is_empty() {
            return None;
        }
        let held = std::mem::take(&mut self.held);
        self.tentative = None;
        let agreeing: Vec<&FramePrediction> = held
            .iter()
            .filter(|(sector, _)| locked.is_some_and(|l| sector.iou(l) >= AGREEING_IOU))
            .map(|(_, frame)| frame)
            .collect();
        log::debug!(
            "sector locked: {} of {} provisional frames agree and count",
            agreeing.len(),
            held.len()
        );
        let mut last = None;
        for frame in agreeing {
            self.count(frame);
            last = Some(self.report());
        }
        Some(last.unwrap_or_else(|| {
            let (score, probs) = self.decide();
            self.update_with(score, probs)
        }))
    }

    /// The live score follows every frame, smoothed.
    fn follow_live(&mut self, frame: &FramePrediction) {
        self.live = Some(match self.live {
            None => frame.score_probs,
            Some(prev) => {
                std::array::from_fn(|i| prev[i] + LIVE_SMOOTHING * (frame.score_probs[i] - prev[i]))
            }
        });
    }

    /// Counts a frame in the clip score.
    fn count(&mut self, frame: &FramePrediction) {
        self.frames += 1;
        for (sum, &p) in self.prob_sums.iter_mut().zip(&frame.score_probs) {
            *sum += f64::from(p);
        }
        for (class, sum) in self.class_sums.iter_mut().enumerate() {
            *sum += f64::from(frame.class_fraction(class));
        }
        if let Some(outputs) = frame.heads {
            self.window.push(outputs);
        }
    }

    /// The scores after the frame just counted.
    fn report(&mut self) -> ScoreUpdate {
        let (score, probs) = self.decide();
        self.unchanged = if self.last_score == Some(score) {
            self.unchanged + 1
        } else {
            0
        };
        self.last_score = Some(score);
        self.update_with(score, probs)
    }

    /// The clip score and its probabilities from the frames counted, by
    /// the model's rule (all zero before any frame counts).
    fn decide(&self) -> (u8, [f32; SCORE_CLASSES]) {
        match heads::decide(self.window.slots.iter().filter_map(|h| h.clip.as_ref())) {
            Some(decision) => (decision.score, decision.probs),
            None => {
                let probs = self
                    .prob_sums
                    .map(|s| (s / self.frames.max(1) as f64) as f32);
                (argmax(&probs) as u8, probs)
            }
        }
    }

    fn update_with(&self, score: u8, probs: [f32; SCORE_CLASSES]) -> ScoreUpdate {
        let live = self.live.unwrap_or(probs);
        ScoreUpdate {
            live_score: argmax(&live) as u8,
            live_probs: live,
            clip: ClipScore {
                score,
                confidence: probs[usize::from(score)],
                probs,
                frames: self.frames,
            },
            stable: self.frames >= STABLE_MIN_FRAMES && self.unchanged + 1 >= STABLE_FRAMES,
            class_fractions: self.class_fractions(),
            findings: heads::pool_findings(&self.window.slots),
        }
    }

    fn class_fractions(&self) -> Vec<f32> {
        let n = self.frames.max(1) as f64;
        self.class_sums.iter().map(|s| (s / n) as f32).collect()
    }
}

/// Mean fraction of the frame covered by segmentation class `class`.
pub fn mean_class_fraction(frames: &[FramePrediction], class: usize) -> f32 {
    let sum: f32 = frames.iter().map(|f| f.class_fraction(class)).sum();
    sum / frames.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(probs: [f32; 4], labels: Vec<u8>) -> FramePrediction {
        FramePrediction {
            score_probs: probs,
            seg_size: 2,
            seg_labels: labels,
            heads: None,
        }
    }

    #[test]
    fn one_confident_outlier_frame_does_not_set_the_clip_score() {
        let frames = vec![
            frame([0.1, 0.6, 0.2, 0.1], vec![0; 4]),
            frame([0.1, 0.5, 0.3, 0.1], vec![0; 4]),
            frame([0.1, 0.6, 0.2, 0.1], vec![0; 4]),
            frame([0.1, 0.5, 0.3, 0.1], vec![0; 4]),
            frame([0.0, 0.0, 0.0, 1.0], vec![0; 4]),
        ];
        let clip = clip_score(&frames).unwrap();
        assert_eq!(clip.score, 1);
        assert!((clip.confidence - 2.2 / 5.0).abs() < 1e-6);
        assert_eq!(clip.frames, 5);
    }

    #[test]
    fn the_clip_score_is_the_mean_probability_so_far() {
        let frames = [
            frame([0.1, 0.6, 0.2, 0.1], vec![1, 0, 0, 0]),
            frame([0.0, 0.1, 0.8, 0.1], vec![1, 1, 0, 0]),
            frame([0.1, 0.5, 0.3, 0.1], vec![0, 0, 0, 0]),
        ];
        let mut tracker = ClipTracker::new(3);
        let last = frames.iter().map(|f| tracker.update(f)).last().unwrap();
        assert_eq!(last.clip.score, 2);
        let expected = [0.2 / 3.0, 1.2 / 3.0, 1.3 / 3.0, 0.1];
        for (p, e) in last.clip.probs.iter().zip(expected) {
            assert!((p - e).abs() < 1e-6, "{:?}", last.clip.probs);
        }
        assert_eq!(last.clip.confidence, last.clip.probs[2]);
        assert!((last.class_fractions[1] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn a_clip_becomes_stable_once_its_score_stops_changing() {
        let mut tracker = ClipTracker::new(3);
        let steady = frame([0.1, 0.7, 0.1, 0.1], vec![0; 4]);
        let stable: Vec<bool> = (0..STABLE_FRAMES + 4)
            .map(|_| tracker.update(&steady).stable)
            .collect();
        assert!(!stable[STABLE_FRAMES - 2]);
        assert!(stable[STABLE_FRAMES - 1]);
        // A run of strong score-3 frames changes the clip score: unstable again.
        let severe = frame([0.0, 0.0, 0.0, 1.0], vec![0; 4]);
        let after: Vec<ScoreUpdate> = (0..40).map(|_| tracker.update(&severe)).collect();
        let changed = after.iter().position(|u| u.clip.score == 3).unwrap();
        assert!(!after[changed].stable);
        assert!(after.last().unwrap().stable);
    }

    #[test]
    fn the_live_score_follows_a_change_faster_than_the_clip_score() {
        let mut tracker = ClipTracker::new(3);
        for _ in 0..30 {
            tracker.update(&frame([0.9, 0.1, 0.0, 0.0], vec![0; 4]));
        }
        let mut update = None;
        for _ in 0..10 {
            update = Some(tracker.update(&frame([0.0, 0.0, 0.1, 0.9], vec![0; 4])));
        }
        let update = update.unwrap();
        assert_eq!(update.live_score, 3);
        assert_eq!(update.clip.score, 0);
    }

    #[test]
    fn provisional_frames_count_once_the_locked_sector_agrees_and_are_dropped_if_not() {
        let locked = Roi {
            x: 0,
            y: 0,
            w: 100,
            h: 100,
        };
        let near = Roi { w: 96, ..locked };
        let far = Roi { w: 60, ..locked };
        assert!(locked.iou(near) >= AGREEING_IOU && locked.iou(far) < AGREEING_IOU);
        let mild = frame([0.1, 0.8, 0.1, 0.0], vec![0; 4]);
        let severe = frame([0.0, 0.0, 0.1, 0.9], vec![0; 4]);
        let mut tracker = ClipTracker::new(3);
        // On screen at once, never stable, not yet counted.
        let shown = tracker.update_provisional(&severe, far);
        assert_eq!(
            (shown.live_score, shown.clip.score, shown.stable),
            (3, 3, false)
        );
        let shown = tracker.update_provisional(&mild, near);
        assert_eq!(shown.clip.frames, 2, "the tentative clip score");
        // The lock: the frame on the near sector counts, the far one not.
        let settled = tracker.settle(Some(locked)).unwrap();
        assert_eq!((settled.clip.frames, settled.clip.score), (1, 1));
        assert_eq!(tracker.settle(Some(locked)), None, "nothing left to settle");
        assert_eq!(tracker.update(&mild).clip.frames, 2);

        // No sector locked: nothing provisional counts.
        let mut tracker = ClipTracker::new(3);
        tracker.update_provisional(&severe, locked);
        let settled = tracker.settle(None).unwrap();
        assert_eq!(settled.clip.frames, 0);
    }

    #[test]
    fn settled_provisional_frames_count_as_if_they_had_come_on_the_locked_sector() {
        let (sector, frames) = (SECTOR, varied_frames(40));
        let mut direct = ClipTracker::new(3);
        let expected = frames.iter().map(|f| direct.update(f)).last().unwrap();
        let mut provisional = ClipTracker::new(3);
        for f in &frames[..20] {
            provisional.update_provisional(f, sector);
        }
        provisional.settle(Some(sector));
        let got = frames[20..]
            .iter()
            .map(|f| provisional.update(f))
            .last()
            .unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn until_the_lock_the_clip_score_shown_is_as_if_every_held_frame_counted() {
        let (sector, frames) = (SECTOR, varied_frames(31));
        let (mut direct, mut provisional) = (ClipTracker::new(3), ClipTracker::new(3));
        for f in &frames {
            let (counted, shown) = (direct.update(f), provisional.update_provisional(f, sector));
            assert!(!shown.stable, "a tentative score is never stable");
            assert_eq!(
                shown,
                ScoreUpdate {
                    stable: false,
                    ..counted
                }
            );
        }
    }

    /// A sector for the provisional-frame tests.
    const SECTOR: Roi = Roi {
        x: 0,
        y: 0,
        w: 80,
        h: 60,
    };

    /// `n` v3 frames whose clip-head terms vary, so that the clip score
    /// moves.
    fn varied_frames(n: usize) -> Vec<FramePrediction> {
        (0..n)
            .map(|i| v3_frame([0.2, 0.3, 0.3, 0.2], (i % 7) as f32 - 3.0, (i % 5) as f32))
            .collect()
    }

    fn v3_frame(probs: [f32; 4], value: f32, attention: f32) -> FramePrediction {
        FramePrediction {
            heads: Some(HeadOutputs {
                finding_logits: [0.0, value, -1.0, 0.0],
                clip: Some(ClipTerms {
                    attention,
                    value,
                    cutpoints: [-1.0, 0.0, 1.0],
                }),
            }),
            ..frame(probs, vec![0; 4])
        }
    }

    #[test]
    fn a_v3_clip_is_decided_by_its_clip_head_not_the_mean_frame() {
        // Every frame's own score head says 0, but a few frames carry
        // strong, attended evidence: the clip head decides 3.
        let mut frames = vec![v3_frame([0.9, 0.1, 0.0, 0.0], -2.0, -3.0); 20];
        for f in frames.iter_mut().step_by(5) {
            *f = v3_frame([0.9, 0.1, 0.0, 0.0], 3.0, 3.0);
        }
        let clip = clip_score(&frames).unwrap();
        assert_eq!(clip.score, 3);
        assert_eq!(clip.confidence, clip.probs[3]);
        let findings = clip_findings(&frames).unwrap();
        assert!(findings[heads::B_LINES] > 0.5, "{findings:?}");
    }

    #[test]
    fn the_window_spreads_its_frames_over_the_clip_then_slides() {
        let mut window = HeadWindow::default();
        let values = |w: &HeadWindow| {
            w.slots
                .iter()
                .filter_map(|h| h.clip.map(|c| c.value as usize))
                .collect::<Vec<_>>()
        };
        let push_until = |w: &mut HeadWindow, n: usize| {
            while w.offered < n {
                let value = w.offered as f32;
                w.push(v3_frame([0.25; 4], value, 0.0).heads.unwrap());
            }
        };
        push_until(&mut window, CLIP_WINDOW);
        assert_eq!(values(&window), (0..48).collect::<Vec<_>>());
        push_until(&mut window, 2 * CLIP_WINDOW);
        assert_eq!(values(&window), (0..96).step_by(2).collect::<Vec<_>>());
        push_until(&mut window, 4 * CLIP_WINDOW);
        assert_eq!(values(&window), (0..192).step_by(4).collect::<Vec<_>>());
        // At the widest spacing the window slides: the most recent frames.
        push_until(&mut window, 1000);
        let kept = values(&window);
        assert_eq!(kept.len(), CLIP_WINDOW);
        assert_eq!(kept, (808..1000).step_by(4).collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_clip_has_no_score() {
        assert_eq!(clip_score(&[]), None);
    }

    #[test]
    fn class_fraction_is_averaged_over_frames() {
        let frames = vec![
            frame([1.0, 0.0, 0.0, 0.0], vec![1, 1, 0, 0]),
            frame([1.0, 0.0, 0.0, 0.0], vec![0, 0, 0, 0]),
        ];
        assert!((mean_class_fraction(&frames, 1) - 0.25).abs() < 1e-6);
    }
}
