//! From frame predictions to scores over time.
//!
//! A clip is one zone of the chest scanned for a few seconds. Its score
//! follows the mean of the frame probabilities (soft voting), so that a
//! single noisy frame cannot set it; the confidence is the mean probability
//! of the chosen score. While a clip plays, [`ClipTracker`] also keeps a
//! smoothed live score for the screen, and says when the clip score has
//! become stable: the moment a zone's score can be recorded.

use crate::frame::GrayFrame;
use crate::model::SCORE_CLASSES;
use crate::model::lusnet::{FramePrediction, argmax};
use crate::preprocess::Roi;
use std::sync::Arc;

/// How frame outputs are combined into a clip score (stored in the model file).
pub const AGGREGATION: &str = "mean_probability";

/// The score of one clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipScore {
    /// Soldati score 0–3.
    pub score: u8,
    /// Mean probability of that score over the frames.
    pub confidence: f32,
    /// Mean probability of each score.
    pub probs: [f32; SCORE_CLASSES],
    /// Frames that contributed.
    pub frames: usize,
}

/// Soft-votes the frames of a clip; `None` for a clip without frames.
pub fn clip_score(frames: &[FramePrediction]) -> Option<ClipScore> {
    let mut tracker = ClipTracker::new(0);
    frames.iter().map(|f| tracker.update(f).clip).last()
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
    /// The network's output for it.
    pub prediction: FramePrediction,
    /// The scores after it.
    pub scores: ScoreUpdate,
}

/// The running scores of one clip, in constant memory.
#[derive(Debug, Clone)]
pub struct ClipTracker {
    prob_sums: [f64; SCORE_CLASSES],
    class_sums: Vec<f64>,
    frames: usize,
    live: Option<[f32; SCORE_CLASSES]>,
    last_score: Option<u8>,
    unchanged: usize,
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
        }
    }

    /// Adds the next frame's prediction.
    pub fn update(&mut self, frame: &FramePrediction) -> ScoreUpdate {
        self.frames += 1;
        for (sum, &p) in self.prob_sums.iter_mut().zip(&frame.score_probs) {
            *sum += f64::from(p);
        }
        for (class, sum) in self.class_sums.iter_mut().enumerate() {
            *sum += f64::from(frame.class_fraction(class));
        }
        let live = match self.live {
            None => frame.score_probs,
            Some(prev) => {
                std::array::from_fn(|i| prev[i] + LIVE_SMOOTHING * (frame.score_probs[i] - prev[i]))
            }
        };
        self.live = Some(live);
        let probs = self.prob_sums.map(|s| (s / self.frames as f64) as f32);
        let score = argmax(&probs) as u8;
        self.unchanged = if self.last_score == Some(score) {
            self.unchanged + 1
        } else {
            0
        };
        self.last_score = Some(score);
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
