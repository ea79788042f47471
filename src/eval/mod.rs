//! Offline work on labelled datasets: evaluating a model against expert
//! scores (`pleura eval`) and exporting preprocessed frames for the trainer
//! (`pleura dataset export`).
//!
//! Both read clips through the same decode → sector → crop/resize path as
//! the live pipeline, so the trainer, the evaluation and the bedside see the
//! same pixels. A clip that cannot be decoded is named, counted and skipped;
//! the run goes on.

pub mod dataset;
pub mod findings;
pub mod metrics;
pub mod segmentation;

use crate::frame::GrayFrame;
use crate::model::heads;
use crate::model::{FramePrediction, LusNet, ModelError};
use crate::preprocess::quality::FrameGate;
use crate::preprocess::{Roi, crop_resize, detect_sector, earlier_offsets};
use crate::scoring::{clip_findings, clip_score, mean_class_fraction};
use crate::source::{SourceError, decode_clip, evenly_spaced};
use dataset::{ClipRecord, DatasetKind};
use findings::Findings;
use metrics::{Confusion, quantile, roc_auc};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// Frames run through the network at once.
pub const BATCH: usize = 16;

/// A clip decoded and preprocessed into model-sized frames.
#[derive(Debug, Clone)]
pub struct PreparedClip {
    /// The sector found in the clip, if any.
    pub roi: Option<Roi>,
    /// `size × size` 8-bit frames: those that passed the checks of
    /// [`crate::preprocess::quality`].
    pub frames: Vec<Vec<u8>>,
    /// For each frame of `frames`, the two earlier frames of a 2.5D input
    /// (`2 × size × size` bytes, oldest first); empty unless asked for
    /// ([`prepare_clip`]).
    pub history: Vec<Vec<u8>>,
    /// Frames decoded (of those, the ones kept when `max_frames` applies).
    pub decoded: usize,
    /// Frames that got no score, by reason.
    pub rejected: BTreeMap<&'static str, usize>,
}

impl PreparedClip {
    /// Why frames were left out, e.g. "100 of 100 frames rejected
    /// (no_image 100)"; empty when none was.
    pub fn rejections(&self) -> String {
        if self.rejected.is_empty() {
            return String::new();
        }
        let reasons: Vec<String> = self
            .rejected
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        format!(
            "{} of {} frames rejected ({})",
            self.rejected.values().sum::<usize>(),
            self.decoded,
            reasons.join(", ")
        )
    }
}

/// Decodes a clip (at most `max_frames`, evenly spaced), finds its sector
/// and, for every frame that can be scored (see
/// [`crate::preprocess::quality`]), crops and resizes it to `size × size`.
///
/// For a 2.5D model (`history_step` > 0, [`crate::model::ModelMeta`]) each
/// kept frame also brings the decoded frames `2 × step` and `step` before
/// it in the video, oldest first, cropped to the same sector (the clip's
/// first frame stands in for those before it), in
/// [`PreparedClip::history`]. The kept frames, their sector and their
/// checks do not depend on the step.
pub fn prepare_clip(
    path: &Path,
    size: usize,
    max_frames: Option<usize>,
    step: usize,
) -> Result<PreparedClip, SourceError> {
    let decoded = decode_clip(path, if step == 0 { max_frames } else { None })?;
    let kept = if step == 0 {
        (0..decoded.len()).collect()
    } else {
        evenly_spaced(decoded.len(), max_frames)
    };
    if kept.is_empty() {
        return Err(SourceError::Decode {
            path: path.to_path_buf(),
            reason: "the clip holds no frame".into(),
        });
    }
    let sampled: Cow<[GrayFrame]> = if step == 0 {
        Cow::Borrowed(&decoded)
    } else {
        Cow::Owned(kept.iter().map(|&i| decoded[i].clone()).collect())
    };
    let roi = detect_sector(&sampled);
    let mut gate = FrameGate::new();
    let mut frames = Vec::with_capacity(kept.len());
    let mut history = Vec::new();
    let mut rejected = BTreeMap::new();
    for (&index, frame) in kept.iter().zip(sampled.iter()) {
        match gate.admit(frame, roi, size) {
            Ok((sector, input)) => {
                if step > 0 {
                    let earlier = |back: usize| {
                        crop_resize(&decoded[index.saturating_sub(back)], sector, size)
                            .unwrap_or_else(|| input.clone())
                    };
                    history.push(earlier_offsets(step).map(earlier).concat());
                }
                frames.push(input);
            }
            Err(reason) => *rejected.entry(reason.key()).or_default() += 1,
        }
    }
    Ok(PreparedClip {
        roi,
        frames,
        history,
        decoded: kept.len(),
        rejected,
    })
}

/// Runs every frame of a prepared clip through the model, in batches.
pub fn predict_clip(
    model: &LusNet,
    clip: &PreparedClip,
) -> Result<Vec<FramePrediction>, ModelError> {
    if clip.history.is_empty() {
        let views: Vec<&[u8]> = clip.frames.iter().map(Vec::as_slice).collect();
        return predict_frames(model, &views);
    }
    let inputs: Vec<Vec<u8>> = (clip.history.iter().zip(&clip.frames))
        .map(|(earlier, frame)| [earlier.as_slice(), frame].concat())
        .collect();
    let views: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    predict_frames(model, &views)
}

/// Runs model-sized frames through the model, [`BATCH`] at a time.
pub fn predict_frames(
    model: &LusNet,
    frames: &[&[u8]],
) -> Result<Vec<FramePrediction>, ModelError> {
    let mut predictions = Vec::with_capacity(frames.len());
    for batch in frames.chunks(BATCH) {
        predictions.extend(model.predict(batch)?);
    }
    Ok(predictions)
}

/// Why an evaluation or export stopped (single clips never stop it).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The dataset's labels could not be read.
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    /// The model failed on valid input.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An input file is missing or malformed.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The output could not be written.
    #[error("{path}: {cause}")]
    Output {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
}

/// Video-level agreement with the expert scores.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoMetrics {
    /// Exact agreement.
    pub accuracy: f64,
    /// Unweighted mean F1 over scores.
    pub macro_f1: f64,
    /// F1 weighted by true counts.
    pub weighted_f1: f64,
    /// Quadratic-weighted kappa.
    pub qwk: f64,
    /// Mean absolute score error.
    pub mae: f64,
    /// Rows = truth, columns = prediction.
    pub confusion: Confusion,
}

impl VideoMetrics {
    /// Metrics of `(truth, prediction)` pairs.
    pub fn from_pairs(pairs: &[(u8, u8)]) -> Self {
        let confusion = Confusion::new(pairs, crate::model::SCORE_CLASSES);
        Self {
            accuracy: confusion.accuracy(),
            macro_f1: confusion.macro_f1(),
            weighted_f1: confusion.weighted_f1(),
            qwk: confusion.quadratic_kappa(),
            mae: confusion.mae(),
            confusion,
        }
    }
}

/// Exam-level error: per patient, the sum of one score per zone, the
/// worst of the zone's recordings (the Soldati score is the worst finding).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExamMetrics {
    /// Mean absolute error of the exam total.
    pub mae: f64,
    /// Distinct patients whose every rated recording was scored.
    pub patients: usize,
}

/// B-line detection from the segmentation output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlineMetrics {
    /// ROC AUC of the mean B-line area against the expert's yes/no.
    pub auc: Option<f64>,
    /// Clips with a B-line label.
    pub clips: usize,
    /// False tint: the median B-line area fraction on the clips the experts
    /// call B-line-negative.
    pub negative_fraction_median: Option<f64>,
    /// False tint: its 90th percentile.
    pub negative_fraction_p90: Option<f64>,
}

/// One finding the model predicts, against the experts' labels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FindingMetrics {
    /// ROC AUC of the clip's mean segmented area of the finding's class
    /// against the label; `None` unless both answers occur.
    pub auc: Option<f64>,
    /// Clips labelled for the finding.
    pub clips: usize,
    /// Of those, the clips labelled present.
    pub positive: usize,
}

/// The findings the model predicts, and the segmentation class whose area
/// predicts each.
pub const PREDICTED_FINDINGS: [(&str, &str); 2] =
    [("b_lines", "b_line"), ("consolidation", "consolidation")];

/// One scored clip.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClipResult {
    /// The clip's name.
    pub name: String,
    /// Patient or name stem.
    pub group: String,
    /// Chest zone, where known.
    pub zone: Option<String>,
    /// Expert score.
    pub truth: u8,
    /// Predicted score.
    pub predicted: u8,
    /// Confidence of the prediction.
    pub confidence: f32,
    /// Mean probability of each score.
    pub probs: [f32; 4],
    /// Mean B-line area fraction.
    pub bline_fraction: f32,
    /// Mean consolidation area fraction.
    pub consolidation_fraction: f32,
    /// The model's finding probabilities, by name (v3 heads only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub finding_probs: BTreeMap<String, f32>,
    /// The experts' findings.
    pub findings: Findings,
}

impl ClipResult {
    /// How strongly the model says `finding` is in the clip: its finding
    /// head's probability (v3), or else the mean area of the segmentation
    /// class that shows it.
    fn finding_score(&self, finding: &str, class: &str) -> Option<f32> {
        match self.finding_probs.get(finding) {
            Some(&p) => Some(p),
            None => self.class_fraction(class),
        }
    }

    /// The mean area fraction of a segmentation class, by name.
    fn class_fraction(&self, class: &str) -> Option<f32> {
        match class {
            "b_line" => Some(self.bline_fraction),
            "consolidation" => Some(self.consolidation_fraction),
            _ => None,
        }
    }
}

/// A clip that could not be scored, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SkippedClip {
    /// The clip's name.
    pub name: String,
    /// The reason, naming the file.
    pub reason: String,
}

/// The result of `pleura eval`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    /// Which dataset.
    pub dataset: DatasetKind,
    /// Clips scored.
    pub clips_scored: usize,
    /// Clips skipped (unreadable).
    pub clips_skipped: usize,
    /// Video-level metrics.
    pub video: VideoMetrics,
    /// Exam-level metrics (BLUES only).
    pub exam: Option<ExamMetrics>,
    /// B-line detection.
    pub bline: BlineMetrics,
    /// Clip-level ROC AUC of each finding the model predicts
    /// ([`PREDICTED_FINDINGS`]), by finding name.
    pub findings: BTreeMap<String, FindingMetrics>,
    /// The skipped clips.
    pub skipped: Vec<SkippedClip>,
    /// Every scored clip.
    pub clips: Vec<ClipResult>,
}

/// Scores every rated clip of a dataset and compares with the experts.
/// `progress` is called after each clip with (done, total, clip name).
pub fn evaluate(
    kind: DatasetKind,
    dir: &Path,
    model: &LusNet,
    max_frames: Option<usize>,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<EvalReport, EvalError> {
    let rated: Vec<ClipRecord> = dataset::list_clips(kind, dir)?
        .into_iter()
        .filter(|c| c.score.is_some())
        .collect();
    let meta = model.meta();
    let bline_class = meta.seg_class("b_line");
    let consolidation_class = meta.seg_class("consolidation");
    let mut clips = Vec::new();
    let mut skipped = Vec::new();
    for (i, record) in rated.iter().enumerate() {
        progress(i, rated.len(), &record.name);
        let prepared =
            match prepare_clip(&record.path, meta.input_size, max_frames, meta.history_step) {
                Ok(p) if !p.frames.is_empty() => p,
                Ok(p) => {
                    skipped.push(skip(record, p.rejections()));
                    continue;
                }
                Err(e) => {
                    log::debug!("skipping clip: {e}");
                    skipped.push(skip(record, e.to_string()));
                    continue;
                }
            };
        let predictions = predict_clip(model, &prepared)?;
        let Some(clip) = clip_score(&predictions) else {
            skipped.push(skip(record, "no usable frame".into()));
            continue;
        };
        let fraction =
            |class: Option<usize>| class.map_or(0.0, |c| mean_class_fraction(&predictions, c));
        clips.push(ClipResult {
            name: record.name.clone(),
            group: record.group.clone(),
            zone: record.zone.clone(),
            truth: record.score.unwrap_or_default(),
            predicted: clip.score,
            confidence: clip.confidence,
            probs: clip.probs,
            bline_fraction: fraction(bline_class),
            consolidation_fraction: fraction(consolidation_class),
            finding_probs: clip_findings(&predictions)
                .map(heads::named)
                .unwrap_or_default(),
            findings: record.findings,
        });
    }
    progress(rated.len(), rated.len(), "");
    Ok(report(kind, &rated, clips, skipped))
}

fn skip(record: &ClipRecord, reason: String) -> SkippedClip {
    SkippedClip {
        name: record.name.clone(),
        reason,
    }
}

/// Builds the report from scored clips.
fn report(
    kind: DatasetKind,
    rated: &[ClipRecord],
    clips: Vec<ClipResult>,
    skipped: Vec<SkippedClip>,
) -> EvalReport {
    let pairs: Vec<(u8, u8)> = clips.iter().map(|c| (c.truth, c.predicted)).collect();
    let exam = (kind == DatasetKind::Blues).then(|| exam_metrics(rated, &clips));
    let findings: BTreeMap<String, FindingMetrics> = PREDICTED_FINDINGS
        .iter()
        .map(|&(finding, class)| (finding.to_string(), finding_metrics(&clips, finding, class)))
        .collect();
    let b_lines = &findings["b_lines"];
    let mut negative: Vec<f64> = clips
        .iter()
        .filter(|c| c.findings.b_lines == Some(false))
        .map(|c| f64::from(c.bline_fraction))
        .collect();
    negative.sort_by(f64::total_cmp);
    EvalReport {
        dataset: kind,
        clips_scored: clips.len(),
        clips_skipped: skipped.len(),
        video: VideoMetrics::from_pairs(&pairs),
        exam,
        bline: BlineMetrics {
            auc: b_lines.auc,
            clips: b_lines.clips,
            negative_fraction_median: quantile(&negative, 0.5),
            negative_fraction_p90: quantile(&negative, 0.9),
        },
        findings,
        skipped,
        clips,
    }
}

/// The ROC AUC of the model's finding score ([`ClipResult::finding_score`])
/// against a finding's labels, over the clips labelled for it.
fn finding_metrics(clips: &[ClipResult], finding: &str, class: &str) -> FindingMetrics {
    let (scores, labels): (Vec<f64>, Vec<bool>) = clips
        .iter()
        .filter_map(|c| {
            Some((
                f64::from(c.finding_score(finding, class)?),
                c.findings.get(finding)?,
            ))
        })
        .unzip();
    FindingMetrics {
        auc: roc_auc(&scores, &labels),
        clips: labels.len(),
        positive: labels.iter().filter(|&&l| l).count(),
    }
}

/// Exam totals per patient, over patients whose every rated recording was
/// scored. Each zone counts once, with the worst score of its recordings,
/// for the experts and for the model alike.
fn exam_metrics(rated: &[ClipRecord], clips: &[ClipResult]) -> ExamMetrics {
    let mut recordings: BTreeMap<&str, usize> = BTreeMap::new();
    for record in rated {
        *recordings.entry(record.group.as_str()).or_default() += 1;
    }
    /// One patient's exam: recordings scored, and per zone the worst
    /// (truth, prediction) of its recordings.
    #[derive(Default)]
    struct Exam<'a> {
        scored: usize,
        zones: BTreeMap<&'a str, (u8, u8)>,
    }
    let mut exams: BTreeMap<&str, Exam> = BTreeMap::new();
    for clip in clips {
        let exam = exams.entry(clip.group.as_str()).or_default();
        exam.scored += 1;
        let zone = exam
            .zones
            .entry(clip.zone.as_deref().unwrap_or(&clip.name))
            .or_default();
        *zone = (zone.0.max(clip.truth), zone.1.max(clip.predicted));
    }
    let errors: Vec<f64> = exams
        .iter()
        .filter(|(patient, exam)| recordings.get(*patient) == Some(&exam.scored))
        .map(|(_, exam)| {
            let (truth, predicted) = exam.zones.values().fold((0i64, 0i64), |(t, p), &(zt, zp)| {
                (t + i64::from(zt), p + i64::from(zp))
            });
            (truth - predicted).abs() as f64
        })
        .collect();
    ExamMetrics {
        mae: if errors.is_empty() {
            0.0
        } else {
            errors.iter().sum::<f64>() / errors.len() as f64
        },
        patients: errors.len(),
    }
}

/// One clip in an exported training set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedClip {
    /// The labels.
    #[serde(flatten)]
    pub record: ClipRecord,
    /// The dataset it came from.
    pub dataset: DatasetKind,
    /// The sector found.
    pub roi: Roi,
    /// Frames stored.
    pub frames: usize,
    /// Raw `frames × size × size` bytes, relative to the index.
    pub file: String,
    /// Raw `frames × 2 × size × size` bytes of each frame's two earlier
    /// frames (oldest first), relative to the index, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
}

/// What an export writes of each clip.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Side of the square frames.
    pub size: usize,
    /// At most this many frames per clip, evenly spaced.
    pub max_frames: Option<usize>,
    /// Which clips.
    pub clips: ExportClips,
    /// With a value `step` > 0, each frame's 2.5D history too: the decoded
    /// frames `2 × step` and `step` before it
    /// ([`prepare_clip`]).
    pub history_step: usize,
}

/// Which clips of a dataset an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportClips {
    /// Clips with a score: the training and test sets.
    Rated,
    /// Every clip, with or without a score (a missing score is `null` in the
    /// index): frames for self-supervised pretraining.
    All,
}

/// Writes the clips of a dataset as raw preprocessed frames plus an
/// `index.json`, for the training script. Returns (exported, skipped).
pub fn export_dataset(
    kind: DatasetKind,
    dir: &Path,
    out: &Path,
    options: ExportOptions,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<(usize, Vec<SkippedClip>), EvalError> {
    let output = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Output {
            path,
            cause: source,
        }
    };
    let chosen: Vec<ClipRecord> = dataset::list_clips(kind, dir)?
        .into_iter()
        .filter(|c| options.clips == ExportClips::All || c.score.is_some())
        .collect();
    let size = options.size;
    std::fs::create_dir_all(out.join("frames")).map_err(output(out))?;
    if options.history_step > 0 {
        std::fs::create_dir_all(out.join("history")).map_err(output(out))?;
    }
    let mut exported = Vec::new();
    let mut skipped = Vec::new();
    for (i, record) in chosen.iter().enumerate() {
        progress(i, chosen.len(), &record.name);
        match prepare_clip(&record.path, size, options.max_frames, options.history_step) {
            Ok(PreparedClip {
                roi: Some(roi),
                frames,
                history: earlier,
                ..
            }) if !frames.is_empty() => {
                let file = format!("frames/{i:04}.u8");
                let path = out.join(&file);
                std::fs::write(&path, frames.concat()).map_err(output(&path))?;
                let history = if earlier.is_empty() {
                    None
                } else {
                    let file = format!("history/{i:04}.u8");
                    let path = out.join(&file);
                    std::fs::write(&path, earlier.concat()).map_err(output(&path))?;
                    Some(file)
                };
                exported.push(ExportedClip {
                    record: record.clone(),
                    dataset: kind,
                    roi,
                    frames: frames.len(),
                    file,
                    history,
                });
            }
            Ok(clip) => skipped.push(skip(record, clip.rejections())),
            Err(e) => skipped.push(skip(record, e.to_string())),
        }
    }
    progress(chosen.len(), chosen.len(), "");
    let index = out.join("index.json");
    let json = serde_json::json!({
        "size": size,
        "history_step": options.history_step,
        "clips": exported,
    });
    std::fs::write(&index, serde_json::to_vec_pretty(&json).unwrap_or_default())
        .map_err(output(&index))?;
    Ok((exported.len(), skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> ClipRecord {
        let parsed = dataset::BluesName::parse(name);
        ClipRecord {
            name: name.into(),
            path: format!("{name}.mp4").into(),
            group: parsed.patient,
            zone: parsed.zone,
            repeat: parsed.repeat,
            score: Some(0),
            findings: Findings::default(),
            probe: "convex".into(),
        }
    }

    fn scored(record: &ClipRecord, truth: u8, predicted: u8) -> ClipResult {
        ClipResult {
            name: record.name.clone(),
            group: record.group.clone(),
            zone: record.zone.clone(),
            truth,
            predicted,
            confidence: 1.0,
            probs: [0.25; 4],
            bline_fraction: 0.0,
            consolidation_fraction: 0.0,
            finding_probs: BTreeMap::new(),
            findings: Findings::default(),
        }
    }

    #[test]
    fn a_zone_recorded_twice_counts_once_with_its_worst_score() {
        let rated: Vec<ClipRecord> = [
            "patient_1_L1",
            "patient_1_L1_2",
            "patient_1_L2",
            "patient_2_R1",
        ]
        .map(record)
        .into();
        // patient 1: L1 worst truth 3 (pred 1), L2 truth 1 (pred 1): 4 vs 2.
        // patient 2: R1 truth 2, pred 2.
        let clips = vec![
            scored(&rated[0], 0, 1),
            scored(&rated[1], 3, 0),
            scored(&rated[2], 1, 1),
            scored(&rated[3], 2, 2),
        ];
        let exam = exam_metrics(&rated, &clips);
        assert_eq!(exam.patients, 2);
        assert!(
            (exam.mae - 1.0).abs() < 1e-12,
            "(|4 - 2| + 0) / 2, got {}",
            exam.mae
        );
    }

    #[test]
    fn a_patient_with_an_unscored_recording_has_no_exam_total() {
        let rated: Vec<ClipRecord> = ["patient_1_L1", "patient_1_L1_2", "patient_2_R1"]
            .map(record)
            .into();
        let clips = vec![scored(&rated[0], 0, 0), scored(&rated[2], 2, 0)];
        let exam = exam_metrics(&rated, &clips);
        assert_eq!(exam.patients, 1);
        assert!((exam.mae - 2.0).abs() < 1e-12);
    }
}
