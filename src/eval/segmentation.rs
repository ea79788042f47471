//! Segmentation agreement on phantom clips, whose masks are exact
//! (`pleura dataset phantom` writes them): the Dice coefficient of each
//! class, pooled over every frame.

use super::{EvalError, predict_frames};
use crate::model::LusNet;
use crate::preprocess::stack_cropped;
use std::path::Path;

/// Per-class Dice of a model's segmentation against phantom masks.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentationDice {
    /// Class names, background first.
    pub classes: Vec<String>,
    /// Dice of each class; `None` where neither side marks the class.
    pub dice: Vec<Option<f64>>,
    /// Frames compared.
    pub frames: usize,
}

#[derive(serde::Deserialize)]
struct Index {
    size: usize,
    seg_size: usize,
    clips: Vec<IndexClip>,
}

#[derive(serde::Deserialize)]
struct IndexClip {
    frames: usize,
    file: String,
    masks: String,
}

/// Scores every frame of an exported phantom set and compares the
/// segmentation with the masks.
pub fn phantom_dice(model: &LusNet, dir: &Path) -> Result<SegmentationDice, EvalError> {
    let unreadable = |path: &Path, reason: String| EvalError::Input {
        path: path.to_path_buf(),
        reason,
    };
    let index_path = dir.join("index.json");
    let text = std::fs::read(&index_path).map_err(|e| unreadable(&index_path, e.to_string()))?;
    let index: Index =
        serde_json::from_slice(&text).map_err(|e| unreadable(&index_path, e.to_string()))?;
    let meta = model.meta();
    // The segmentation is a quarter of the input's side.
    let (side, seg_side) = (meta.input_size, meta.input_size / 4);
    if (index.size, index.seg_size) != (side, seg_side) {
        let (size, seg) = (index.size, index.seg_size);
        return Err(unreadable(
            &index_path,
            format!(
                "frames of {size} px and masks of {seg} cells, the model takes {side} and gives {seg_side}"
            ),
        ));
    }
    let classes = meta.seg_classes.len();
    let (mut overlap, mut total) = (vec![0u64; classes], vec![0u64; classes]);
    let mut frames = 0;
    for clip in &index.clips {
        let read = |name: &str, per_frame: usize| -> Result<Vec<u8>, EvalError> {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| unreadable(&path, e.to_string()))?;
            if bytes.len() != clip.frames * per_frame {
                return Err(unreadable(
                    &path,
                    format!(
                        "{} bytes, {} expected",
                        bytes.len(),
                        clip.frames * per_frame
                    ),
                ));
            }
            Ok(bytes)
        };
        let pixels = read(&clip.file, index.size * index.size)?;
        let cells = index.seg_size * index.seg_size;
        let masks = read(&clip.masks, cells)?;
        let frames_of_clip: Vec<&[u8]> = pixels.chunks(index.size * index.size).collect();
        // A phantom clip's frames are consecutive, so a 2.5D model's
        // earlier frames are its own.
        let inputs = stack_cropped(&frames_of_clip, meta.history_step);
        let views: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        for (prediction, truth) in predict_frames(model, &views)?
            .iter()
            .zip(masks.chunks(cells))
        {
            for (&p, &t) in prediction.seg_labels.iter().zip(truth) {
                let (p, t) = (usize::from(p), usize::from(t));
                if p < classes {
                    total[p] += 1;
                }
                if t < classes {
                    total[t] += 1;
                    overlap[t] += u64::from(p == t);
                }
            }
            frames += 1;
        }
    }
    Ok(SegmentationDice {
        classes: meta.seg_classes.clone(),
        dice: overlap
            .iter()
            .zip(&total)
            .map(|(&o, &t)| (t > 0).then(|| 2.0 * o as f64 / t as f64))
            .collect(),
        frames,
    })
}
