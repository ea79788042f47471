//! From frame predictions to a clip score.
//!
//! A clip is one zone of the chest scanned for a few seconds. Its score
//! follows the mean of the frame probabilities (soft voting), so that a
//! single noisy frame cannot set it; the confidence is the mean probability
//! of the chosen score.

use crate::model::SCORE_CLASSES;
use crate::model::lusnet::{FramePrediction, argmax};

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
    if frames.is_empty() {
        return None;
    }
    let mut probs = [0f32; SCORE_CLASSES];
    for frame in frames {
        for (sum, p) in probs.iter_mut().zip(frame.score_probs) {
            *sum += p;
        }
    }
    probs.iter_mut().for_each(|p| *p /= frames.len() as f32);
    let score = argmax(&probs);
    Some(ClipScore {
        score: score as u8,
        confidence: probs[score],
        probs,
        frames: frames.len(),
    })
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
