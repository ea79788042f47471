//! LusNet v3's two small heads on the frame embedding: findings and the
//! clip decision.
//!
//! The frame embedding `e` is what the score head already reads: the mean
//! and the maximum over the deepest feature map, `2·w3` values.
//!
//! * **Findings.** One logit per frame for each of [`FINDINGS`]. A clip's
//!   finding is the log-sum-exp pool of its frames' logits
//!   ([`pool_findings`]), a soft maximum: a finding seen in a few frames is
//!   in the clip. A frame whose B-line head says no gets no B-line tint,
//!   and likewise for consolidation ([`HeadOutputs::gate`]).
//! * **Clip decision** (multiple-instance learning, ordinal). Over the
//!   frames `i` of a window, attention logits `a_i = w · tanh(V e_i + b)`
//!   weigh the embeddings, `z = u · Σ softmax(a)_i e_i`, and three ordered
//!   cut-points `t_k` give the Soldati score: the number of `t_k` below `z`,
//!   with `P(score > k) = σ(z − t_k)`. That score is the median of the
//!   ordinal distribution; its probability is the clip's confidence.
//!
//! Because the pooling is linear, `z = Σ softmax(a)_i (u · e_i)`: each
//! frame's attention logit and value are computed once, here, when it is
//! scored (about 8.5 k multiply-accumulates), and a clip decision over any
//! window of frames costs a softmax over their pairs ([`decide`]).

use super::gguf::ModelFile;
use super::{ModelError, SCORE_CLASSES};
use candle_core::Device;

/// The findings the v3 heads report, in the model file's order.
pub const FINDINGS: [&str; 4] = ["a_lines", "b_lines", "consolidation", "pleura_abnormal"];
/// Index of the B-line finding in [`FINDINGS`].
pub const B_LINES: usize = 1;
/// Index of the consolidation finding in [`FINDINGS`].
pub const CONSOLIDATION: usize = 2;
/// Probability from which a finding counts as present.
pub const FINDING_THRESHOLD: f32 = 0.5;
/// Sharpness `r` of the log-sum-exp pool: `(1/r) log mean exp(r x)` lies
/// between the mean (r → 0) and the maximum (r → ∞). The trainer's value.
pub const FINDING_POOL_SHARPNESS: f32 = 4.0;
/// Hidden units of the clip head's attention.
pub const CLIP_ATTENTION: usize = 32;
/// The aggregation a model file with these heads declares.
pub const AGGREGATION: &str = super::ATTENTION_ORDINAL;

/// What the v3 heads say about one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadOutputs {
    /// One logit per finding, [`FINDINGS`] order.
    pub finding_logits: [f32; FINDINGS.len()],
    /// The frame's terms in the clip decision, for a model whose clip
    /// score is the clip head's (aggregation [`AGGREGATION`]).
    pub clip: Option<ClipTerms>,
}

/// One frame's part in a clip decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipTerms {
    /// The frame's attention logit.
    pub attention: f32,
    /// The frame's contribution to the clip value `z`: `u · e`.
    pub value: f32,
    /// The model's ordinal cut-points, so that a clip's rule travels with
    /// its frames.
    pub cutpoints: [f32; SCORE_CLASSES - 1],
}

impl HeadOutputs {
    /// Probability of each finding in this frame.
    pub fn finding_probs(&self) -> [f32; FINDINGS.len()] {
        self.finding_logits.map(sigmoid)
    }

    /// Relabels as background the segmentation cells of every class whose
    /// finding this frame's head does not see: B-line cells (class
    /// `b_line`) and consolidation cells (class `consolidation`).
    pub fn gate(&self, seg_labels: &mut [u8], b_line: u8, consolidation: u8) {
        let probs = self.finding_probs();
        let off = |finding: usize| probs[finding] < FINDING_THRESHOLD;
        let (no_b, no_c) = (off(B_LINES), off(CONSOLIDATION));
        for label in seg_labels {
            if (no_b && *label == b_line) || (no_c && *label == consolidation) {
                *label = 0;
            }
        }
    }
}

/// Finding probabilities by name, as reports and JSON carry them.
pub fn named(probs: [f32; FINDINGS.len()]) -> std::collections::BTreeMap<String, f32> {
    FINDINGS.iter().map(|f| f.to_string()).zip(probs).collect()
}

/// The clip decision over a window of frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipDecision {
    /// Soldati score 0–3.
    pub score: u8,
    /// The clip value `z`.
    pub value: f32,
    /// `P(score = k)` under the ordinal model.
    pub probs: [f32; SCORE_CLASSES],
}

/// The clip decision over frames' terms; `None` without frames.
pub fn decide<'a>(frames: impl IntoIterator<Item = &'a ClipTerms>) -> Option<ClipDecision> {
    let frames: Vec<&ClipTerms> = frames.into_iter().collect();
    let last = frames.last()?;
    let max = frames
        .iter()
        .fold(f32::NEG_INFINITY, |m, f| m.max(f.attention));
    let weights: Vec<f32> = frames.iter().map(|f| (f.attention - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    let value = frames
        .iter()
        .zip(&weights)
        .map(|(f, w)| f.value * w)
        .sum::<f32>()
        / total;
    let cuts = last.cutpoints;
    let above = cuts.map(|t| sigmoid(value - t));
    let probs = std::array::from_fn(|k| {
        let upper = if k == 0 { 1.0 } else { above[k - 1] };
        let lower = if k == SCORE_CLASSES - 1 {
            0.0
        } else {
            above[k]
        };
        (upper - lower).max(0.0)
    });
    Some(ClipDecision {
        score: cuts.iter().filter(|&&t| value > t).count() as u8,
        value,
        probs,
    })
}

/// A clip's finding probabilities from its frames' logits (log-sum-exp
/// pool, then the logistic); `None` without frames.
pub fn pool_findings<'a>(
    frames: impl IntoIterator<Item = &'a HeadOutputs>,
) -> Option<[f32; FINDINGS.len()]> {
    let logits: Vec<[f32; FINDINGS.len()]> = frames.into_iter().map(|f| f.finding_logits).collect();
    if logits.is_empty() {
        return None;
    }
    let r = FINDING_POOL_SHARPNESS;
    let n = logits.len() as f32;
    Some(std::array::from_fn(|i| {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, l| m.max(l[i]));
        let mean_exp = logits.iter().map(|l| (r * (l[i] - max)).exp()).sum::<f32>() / n;
        sigmoid(max + mean_exp.ln() / r)
    }))
}

/// The heads' weights, read from a model file.
#[derive(Debug, Clone)]
pub struct Heads {
    /// Embedding length `2·w3`.
    dim: usize,
    /// `[finding][dim]`.
    findings: Vec<f32>,
    findings_bias: [f32; FINDINGS.len()],
    /// `[CLIP_ATTENTION][dim]`.
    attention: Vec<f32>,
    attention_bias: Vec<f32>,
    /// `[CLIP_ATTENTION]`.
    attention_out: Vec<f32>,
    attention_out_bias: f32,
    /// `[dim]`.
    ordinal: Vec<f32>,
    cutpoints: [f32; SCORE_CLASSES - 1],
    /// Whether the clip head decides the clip score (the file's aggregation
    /// is [`AGGREGATION`]); otherwise only the findings are used.
    decides_clip: bool,
}

/// Whether a model file carries the v3 heads.
pub fn in_file(file: &ModelFile) -> bool {
    file.tensors.contains_key("findings.weight")
}

impl Heads {
    /// The heads of a v3 file ([`in_file`]), for embeddings of `dim`
    /// values; each tensor's shape is checked, and the cut-points must be
    /// finite and increasing.
    pub fn read(file: &ModelFile, dim: usize) -> Result<Self, ModelError> {
        let dense = |name: &str, rows: usize| -> Result<(Vec<f32>, Vec<f32>), ModelError> {
            let (w, b) = file.layer(name, (rows, dim))?;
            Ok((
                w.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?,
                b.to_vec1()?,
            ))
        };
        let (findings, findings_bias) = dense("findings", FINDINGS.len())?;
        let (attention, attention_bias) = dense("clip.attn_v", CLIP_ATTENTION)?;
        let (w, b) = file.layer("clip.attn_w", (1, CLIP_ATTENTION))?;
        let attention_out = w.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        let attention_out_bias = b.to_vec1::<f32>()?[0];
        let vector = |name: &str, len: usize| -> Result<Vec<f32>, ModelError> {
            let t = file.tensor(name)?.dequantize(&Device::Cpu)?;
            let values = t.flatten_all()?.to_vec1::<f32>()?;
            if values.len() != len {
                return Err(ModelError::Tensor {
                    path: file.path.clone(),
                    name: name.to_string(),
                    reason: format!("{} values, expected {len}", values.len()),
                });
            }
            Ok(values)
        };
        let ordinal = vector("clip.ordinal.weight", dim)?;
        let cuts = vector("clip.cutpoints", SCORE_CLASSES - 1)?;
        let increasing = cuts.iter().all(|c| c.is_finite()) && cuts.windows(2).all(|w| w[0] < w[1]);
        let all_finite = [&findings, &attention, &attention_out, &ordinal]
            .iter()
            .all(|v| v.iter().all(|x| x.is_finite()));
        if !increasing || !all_finite {
            return Err(ModelError::Tensor {
                path: file.path.clone(),
                name: "clip.cutpoints".into(),
                reason: format!(
                    "the clip head needs finite weights and increasing cut-points, found {cuts:?}"
                ),
            });
        }
        Ok(Self {
            dim,
            findings,
            findings_bias: findings_bias
                .try_into()
                .map_err(|_| ModelError::Invariant("findings.bias has the wrong length".into()))?,
            attention,
            attention_bias,
            attention_out,
            attention_out_bias,
            ordinal,
            cutpoints: [cuts[0], cuts[1], cuts[2]],
            decides_clip: file.meta.aggregation == AGGREGATION,
        })
    }

    /// The heads' outputs for one frame embedding of `dim` values.
    pub fn run(&self, embedding: &[f32]) -> HeadOutputs {
        let dot = |w: &[f32]| w.iter().zip(embedding).map(|(a, b)| a * b).sum::<f32>();
        let finding_logits = std::array::from_fn(|i| {
            dot(&self.findings[i * self.dim..(i + 1) * self.dim]) + self.findings_bias[i]
        });
        // The clip terms only where they decide the clip: otherwise the
        // attention layer's 8.5 k multiply-accumulates would be spent per
        // frame for nothing.
        let clip = self.decides_clip.then(|| ClipTerms {
            attention: self
                .attention
                .chunks_exact(self.dim)
                .zip(&self.attention_bias)
                .zip(&self.attention_out)
                .map(|((w, b), out)| (dot(w) + b).tanh() * out)
                .sum::<f32>()
                + self.attention_out_bias,
            value: dot(&self.ordinal),
            cutpoints: self.cutpoints,
        });
        HeadOutputs {
            finding_logits,
            clip,
        }
    }

    /// Multiply-accumulates per frame: the finding heads, and the clip
    /// head's terms where it decides the clip.
    pub fn macs(&self) -> u64 {
        let clip = match self.decides_clip {
            true => (CLIP_ATTENTION + 1) * self.dim + CLIP_ATTENTION,
            false => 0,
        };
        (FINDINGS.len() * self.dim + clip) as u64
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(attention: f32, value: f32, b_logit: f32) -> HeadOutputs {
        HeadOutputs {
            finding_logits: [0.0, b_logit, -3.0, 0.0],
            clip: Some(ClipTerms {
                attention,
                value,
                cutpoints: [-1.0, 0.0, 1.0],
            }),
        }
    }

    fn terms(frames: &[HeadOutputs]) -> Vec<ClipTerms> {
        frames.iter().filter_map(|f| f.clip).collect()
    }

    #[test]
    fn the_clip_value_is_the_attention_weighted_mean_of_frame_values() {
        let frames = [frame(0.0, -2.0, 0.0), frame(0.0, 2.0, 0.0)];
        let d = decide(&terms(&frames)).unwrap();
        assert!(d.value.abs() < 1e-6);
        assert_eq!(d.score, 1, "z = 0 lies above t1 = -1 only");
        // Attention on the second frame pulls the clip to its value.
        let frames = [frame(-10.0, -2.0, 0.0), frame(10.0, 2.0, 0.0)];
        let d = decide(&terms(&frames)).unwrap();
        assert!((d.value - 2.0).abs() < 1e-4);
        assert_eq!(d.score, 3);
    }

    #[test]
    fn ordinal_probabilities_sum_to_one_and_the_score_is_their_median() {
        for z in [-3.0, -0.5, 0.5, 3.0] {
            let d = decide(&terms(&[frame(0.0, z, 0.0)])).unwrap();
            assert!((d.probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let below = |k: usize| d.probs[..=k].iter().sum::<f32>();
            let k = usize::from(d.score);
            assert!(below(k) >= 0.5, "z = {z}: {:?}", d.probs);
            assert!(k == 0 || below(k - 1) < 0.5, "z = {z}: {:?}", d.probs);
        }
    }

    #[test]
    fn a_finding_seen_in_a_few_frames_is_in_the_clip() {
        let mut frames = vec![frame(0.0, 0.0, -4.0); 8];
        assert!(pool_findings(&frames).unwrap()[B_LINES] < 0.1);
        frames[3] = frame(0.0, 0.0, 6.0);
        let pooled = pool_findings(&frames).unwrap()[B_LINES];
        assert!(pooled > FINDING_THRESHOLD, "{pooled}");
        // A soft maximum: below the one frame's own probability.
        assert!(pooled < sigmoid(6.0), "{pooled}");
    }

    #[test]
    fn the_gate_removes_the_tint_of_findings_the_head_does_not_see() {
        let mut labels = vec![0, 1, 2, 1, 0];
        frame(0.0, 0.0, -2.0).gate(&mut labels, 1, 2);
        assert_eq!(labels, vec![0, 0, 0, 0, 0]);
        let mut labels = vec![0, 1, 2, 1, 0];
        frame(0.0, 0.0, 2.0).gate(&mut labels, 1, 2);
        assert_eq!(
            labels,
            vec![0, 1, 0, 1, 0],
            "B-lines kept, consolidation (logit -3) gated"
        );
    }

    #[test]
    fn no_frames_no_decision() {
        assert_eq!(decide(&[]), None);
        assert_eq!(pool_findings(&[]), None);
    }
}
