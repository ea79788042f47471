//! What a model file says about its network besides the weights, and the
//! bounds this build holds it to.

use super::{ARCHITECTURE, ModelError};

/// Everything about a model file except its weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    /// Architecture name; must be [`ARCHITECTURE`].
    pub architecture: String,
    /// Layout version of the architecture.
    pub version: u32,
    /// Side of the square input, in pixels.
    pub input_size: usize,
    /// 2.5D input: each frame enters the network with the frames
    /// `2 × history_step` and `history_step` before it as earlier channels
    /// ([`crate::preprocess::FrameHistory`]); 0: the frame alone.
    pub history_step: usize,
    /// Channel widths of the four encoder stages.
    pub widths: [usize; 4],
    /// Input normalization: `(pixel / 255 - norm_mean) / norm_std`.
    pub norm_mean: f32,
    /// See `norm_mean`.
    pub norm_std: f32,
    /// Segmentation class names, index 0 first (index 0 is background).
    pub seg_classes: Vec<String>,
    /// How frame outputs are combined into a clip score.
    pub aggregation: String,
    /// What the weights were trained on.
    pub training_data: String,
    /// Licenses of the training data, which bind the weights.
    pub licenses: String,
    /// Cross-validation metrics, as a JSON document.
    pub cv_metrics: String,
    /// sha256 over the tensors (names, types, shapes and bytes), hex.
    pub tensors_sha256: String,
}

/// v2's rule for combining frame outputs into a clip score: the mean of
/// the frames' score probabilities ([`crate::scoring`]); v3's clip head
/// has [`ATTENTION_ORDINAL`].
pub const MEAN_PROBABILITY: &str = "mean_probability";
/// v3's clip-head rule ([`super::heads`]): attention over the frames'
/// embeddings, then an ordinal decision.
pub const ATTENTION_ORDINAL: &str = "attention_ordinal";

/// Input sides this build's LusNet supports: four stride-2 stages need a
/// multiple of 16, at least 2 cells at the bottleneck, and the model was
/// trained at 128; beyond 512 a frame costs over 16× the trained cost.
pub const INPUT_SIZES: std::ops::RangeInclusive<usize> = 32..=512;

/// Whether `side` is an input side this build's LusNet supports: a
/// multiple of 16 in [`INPUT_SIZES`]. Otherwise, the rule in words.
pub fn check_input_size(side: usize) -> Result<(), String> {
    if INPUT_SIZES.contains(&side) && side.is_multiple_of(16) {
        return Ok(());
    }
    Err(format!(
        "a multiple of 16 from {} to {}",
        INPUT_SIZES.start(),
        INPUT_SIZES.end()
    ))
}
/// Largest `history_step` this build accepts: a third of a second at
/// 25 frames a second reaches back 16 frames.
pub const MAX_HISTORY_STEP: usize = 8;
/// Widest encoder stage this build accepts (LusNet v2 uses 64).
pub const MAX_WIDTH: usize = 1024;
/// Range accepted for `norm_std`: a standard deviation of pixel values in
/// [0, 1] (the trainer measures about 0.2).
pub const NORM_STD_RANGE: std::ops::RangeInclusive<f32> = 0.01..=1.0;
/// The segmentation classes, in order, that the display, the report and
/// the evaluation expect.
pub const SEG_CLASSES: [&str; 3] = ["background", "b_line", "consolidation"];

impl ModelMeta {
    /// Checks every value that sizes a buffer or changes what the network
    /// computes against what this build supports; `path` names the file in
    /// the error, which gives the key, the value found and the rule.
    pub fn check(&self, path: &std::path::Path) -> Result<(), ModelError> {
        let bad = |key: &str, value: String, rule: &str| {
            Err(ModelError::OutOfRange {
                path: path.to_path_buf(),
                key: format!("{ARCHITECTURE}.{key}"),
                value,
                rule: rule.to_string(),
            })
        };
        if let Err(rule) = check_input_size(self.input_size) {
            return bad("input_size", self.input_size.to_string(), &rule);
        }
        if self.history_step > MAX_HISTORY_STEP {
            return bad(
                "history_step",
                self.history_step.to_string(),
                &format!("from 0 (no history) to {MAX_HISTORY_STEP} frames"),
            );
        }
        if self.widths.iter().any(|&w| w == 0 || w > MAX_WIDTH)
            || !(2 * self.widths[3]).is_multiple_of(32)
        {
            return bad(
                "widths",
                format!("{:?}", self.widths),
                &format!("four widths from 1 to {MAX_WIDTH}, the last a multiple of 16"),
            );
        }
        if !(self.norm_mean.is_finite() && (0.0..=1.0).contains(&self.norm_mean)) {
            return bad(
                "norm_mean",
                self.norm_mean.to_string(),
                "a finite mean pixel value from 0 to 1",
            );
        }
        if !(self.norm_std.is_finite() && NORM_STD_RANGE.contains(&self.norm_std)) {
            return bad(
                "norm_std",
                self.norm_std.to_string(),
                &format!(
                    "a finite standard deviation from {} to {}",
                    NORM_STD_RANGE.start(),
                    NORM_STD_RANGE.end()
                ),
            );
        }
        if self.seg_classes != SEG_CLASSES {
            return bad(
                "seg_classes",
                format!("{:?}", self.seg_classes),
                &format!("exactly {SEG_CLASSES:?}"),
            );
        }
        if ![MEAN_PROBABILITY, ATTENTION_ORDINAL].contains(&self.aggregation.as_str()) {
            return bad(
                "aggregation",
                self.aggregation.clone(),
                &format!("'{}' or '{}'", MEAN_PROBABILITY, ATTENTION_ORDINAL),
            );
        }
        Ok(())
    }

    /// Channels of the network's input: 3 for a 2.5D model (the frames
    /// `2 × history_step` and `history_step` before, then the frame), else 1.
    pub fn input_channels(&self) -> usize {
        if self.history_step > 0 { 3 } else { 1 }
    }

    /// Bytes of one network input: [`Self::input_channels`] planes of
    /// `input_size²` pixels, oldest first.
    pub fn input_len(&self) -> usize {
        self.input_channels() * self.input_size * self.input_size
    }

    /// Index of a segmentation class by name.
    pub fn seg_class(&self, name: &str) -> Option<usize> {
        self.seg_classes.iter().position(|c| c == name)
    }
}
