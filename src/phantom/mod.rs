//! A lung-ultrasound phantom: synthetic video with pixel-exact ground truth.
//!
//! No public lung-ultrasound dataset has pixel masks that Pleura may use,
//! so the phantom draws them: for a Soldati score it builds a random
//! [`Scene`] (soft tissue, ribs and their shadows, a pleural line that
//! slides, A-lines, B-lines, consolidations with air bronchograms, an
//! optional effusion) and renders frames with speckle, attenuation, TGC,
//! gain, breathing and probe jitter. Each frame comes with a mask in the
//! classes of LusNet's segmentation head. The same seed always gives the
//! same clip.
//!
//! The phantom is a training aid and a test source. It holds no patient
//! data, and it is not a substitute for real clips when measuring accuracy.

mod render;
mod scene;

pub use render::{FrameRenderer, ScanConverter};
pub use scene::Scene;

use crate::frame::GrayFrame;
use crate::spec::{self, Named, SpecError};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use std::path::{Path, PathBuf};

/// Mask value of pixels with no pathology (and outside the image).
pub const CLASS_BACKGROUND: u8 = 0;
/// Mask value of B-lines (and confluent B-lines, white lung).
pub const CLASS_B_LINE: u8 = 1;
/// Mask value of consolidations.
pub const CLASS_CONSOLIDATION: u8 = 2;
/// Names of the mask values, as in the model's `seg_classes`.
pub const CLASS_NAMES: [&str; 3] = ["background", "b_line", "consolidation"];

/// Probe geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// A curved array: a fan-shaped image.
    Convex,
    /// A linear array: a rectangular image.
    Linear,
}

impl Named for Probe {
    const WHAT: &'static str = "probe";
    const NAMES: &'static [(&'static str, Self)] =
        &[("convex", Probe::Convex), ("linear", Probe::Linear)];
}

impl std::str::FromStr for Probe {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PhantomParams {
    /// Soldati score 0–3.
    pub score: u8,
    /// Probe geometry.
    pub probe: Probe,
    /// Number of frames.
    pub frames: u64,
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Random seed: the same seed gives the same clip.
    pub seed: u64,
}

impl Default for PhantomParams {
    fn default() -> Self {
        Self {
            score: 0,
            probe: Probe::Convex,
            frames: 250,
            width: 256,
            height: 256,
            seed: 1,
        }
    }
}

/// One phantom frame and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct PhantomFrame {
    /// The image.
    pub image: GrayFrame,
    /// The class of every pixel (same size as the image).
    pub mask: Vec<u8>,
    /// Fraction of the imaged area covered by each class.
    pub areas: [f32; 3],
}

/// A phantom clip, frame by frame.
pub struct Phantom {
    params: PhantomParams,
    rng: Pcg64Mcg,
    renderer: FrameRenderer,
    next: u64,
    imaged: usize,
}

impl Phantom {
    /// Draws the scene for `params` (score clamped to 0–3, size to ≥ 16 px).
    pub fn new(mut params: PhantomParams) -> Self {
        params.score = params.score.min(3);
        params.width = params.width.max(16);
        params.height = params.height.max(16);
        let mut rng = Pcg64Mcg::seed_from_u64(params.seed);
        let scene = Scene::draw(params.score, params.probe, &mut rng);
        let renderer =
            FrameRenderer::new(scene, params.probe, params.width, params.height, &mut rng);
        let imaged = (0..params.width * params.height)
            .filter(|&p| renderer.converter().covers(p))
            .count();
        Self {
            params,
            rng,
            renderer,
            next: 0,
            imaged: imaged.max(1),
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> PhantomParams {
        self.params
    }
}

/// The frames of the clip, in order; it ends after `params.frames`.
impl Iterator for Phantom {
    type Item = PhantomFrame;

    fn next(&mut self) -> Option<PhantomFrame> {
        if self.next >= self.params.frames {
            return None;
        }
        let (w, h) = (self.params.width, self.params.height);
        let mut pixels = vec![0; w * h];
        let mut mask = vec![0; w * h];
        self.renderer
            .render(self.next, &mut self.rng, &mut pixels, &mut mask);
        let mut counts = [0usize; 3];
        for &class in &mask {
            counts[usize::from(class.min(2))] += 1;
        }
        let outside = w * h - self.imaged;
        counts[0] -= outside.min(counts[0]);
        let areas = counts.map(|c| c as f32 / self.imaged as f32);
        let seq = self.next;
        self.next += 1;
        let image = GrayFrame::new(w, h, pixels, seq)?;
        Some(PhantomFrame { image, mask, areas })
    }
}

/// Parses the options of `phantom[:score=N,probe=P,frames=N,seed=S,size=WxH]`.
pub fn parse_options(options: &str) -> Result<PhantomParams, SpecError> {
    let mut params = PhantomParams::default();
    let keys = &["score", "probe", "frames", "seed", "size"];
    for option in spec::options("phantom", options, keys) {
        let option = option?;
        match option.key {
            "score" => {
                params.score = option.parse("use 0 to 3")?;
                if params.score > 3 {
                    return Err(option.bad("use 0 to 3"));
                }
            }
            "probe" => params.probe = option.name()?,
            "frames" => params.frames = option.parse("not a number of frames")?,
            "seed" => params.seed = option.parse("not a number")?,
            _ => {
                (params.width, params.height) = option.size()?;
            }
        }
    }
    Ok(params)
}

/// Why a phantom clip could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {cause}")]
pub struct WriteError {
    /// The file or folder.
    pub path: PathBuf,
    /// What went wrong.
    pub cause: std::io::Error,
}

impl WriteError {
    /// Turns an I/O error about `path` into a `WriteError`.
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |cause| WriteError { path, cause }
    }
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), WriteError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| WriteError::at(path)(e.into()))?;
    std::fs::write(path, text).map_err(WriteError::at(path))
}

/// What `labels.json` holds.
#[derive(Debug, serde::Serialize)]
struct Labels<'a> {
    score: u8,
    probe: Probe,
    params: PhantomParams,
    classes: [&'static str; 3],
    mask_encoding: &'static str,
    frames: Vec<FrameLabel>,
    scene: &'a Scene,
}

#[derive(Debug, serde::Serialize)]
struct FrameLabel {
    frame: String,
    mask: String,
    areas: [f32; 3],
}

/// Writes a phantom clip to `out`: `frames/NNNN.png`, `masks/NNNN.png`
/// (one byte per pixel, the class index) and `labels.json`.
pub fn write_clip(params: PhantomParams, out: &Path) -> Result<usize, WriteError> {
    let (frames_dir, masks_dir) = (out.join("frames"), out.join("masks"));
    for dir in [&frames_dir, &masks_dir] {
        std::fs::create_dir_all(dir).map_err(WriteError::at(dir))?;
    }
    let mut phantom = Phantom::new(params);
    let params = phantom.params();
    let mut labels = Vec::new();
    for frame in phantom.by_ref() {
        let name = format!("{:04}.png", frame.image.seq);
        let (w, h) = (params.width as u32, params.height as u32);
        for (dir, pixels) in [
            (&frames_dir, &frame.image.pixels),
            (&masks_dir, &frame.mask),
        ] {
            let path = dir.join(&name);
            image::save_buffer(&path, pixels, w, h, image::ExtendedColorType::L8)
                .map_err(|e| WriteError::at(&path)(std::io::Error::other(e)))?;
        }
        labels.push(FrameLabel {
            frame: format!("frames/{name}"),
            mask: format!("masks/{name}"),
            areas: frame.areas,
        });
    }
    let count = labels.len();
    let json = Labels {
        score: params.score,
        probe: params.probe,
        params,
        classes: CLASS_NAMES,
        mask_encoding: "8-bit gray PNG, pixel value = class index",
        frames: labels,
        scene: phantom.renderer.scene(),
    };
    let path = out.join("labels.json");
    write_json(&path, &json)?;
    Ok(count)
}

/// One phantom clip in a training export.
#[derive(Debug, serde::Serialize)]
struct ExportedClip {
    name: String,
    score: u8,
    probe: Probe,
    seed: u64,
    frames: usize,
    file: String,
    masks: String,
}

/// Writes phantom clips for the trainer, as `pleura` sees them: for every
/// score and both probes, `clips_per_score` clips of `frames` frames (seeds
/// from `first_seed`), each cropped to its detected sector and resized to
/// `size` (`frames/NNNN.u8`, like `pleura dataset export`), with masks at
/// the segmentation head's `size / 4` by majority vote (`masks/NNNN.u8`),
/// and `index.json`. Returns the number of clips.
pub fn export_training_set(
    out: &Path,
    clips_per_score: u64,
    frames: u64,
    size: usize,
    first_seed: u64,
) -> Result<usize, WriteError> {
    for dir in ["frames", "masks"] {
        std::fs::create_dir_all(out.join(dir)).map_err(WriteError::at(&out.join(dir)))?;
    }
    let seg = size / 4;
    let mut clips = Vec::new();
    for score in 0..4u8 {
        for (i, probe) in
            (0..clips_per_score).flat_map(|i| [(i, Probe::Convex), (i, Probe::Linear)])
        {
            let seed =
                first_seed + u64::from(score) * 10_000 + i * 2 + u64::from(probe == Probe::Linear);
            let params = PhantomParams {
                score,
                probe,
                frames,
                width: 256,
                height: 256,
                seed,
            };
            let (images, frame_masks): (Vec<GrayFrame>, Vec<Vec<u8>>) =
                Phantom::new(params).map(|f| (f.image, f.mask)).unzip();
            let Some(roi) = crate::preprocess::detect_sector(&images) else {
                continue;
            };
            let mut pixels = Vec::new();
            let mut masks = Vec::new();
            for (image, mask) in images.iter().zip(&frame_masks) {
                let Some(view) = crate::preprocess::crop_resize(image, roi, size) else {
                    continue;
                };
                pixels.extend(view);
                masks.extend(majority_cells(mask, image.width, roi, seg));
            }
            let index = clips.len();
            let (file, mask_file) = (
                format!("frames/{index:04}.u8"),
                format!("masks/{index:04}.u8"),
            );
            for (name, bytes) in [(&file, &pixels), (&mask_file, &masks)] {
                let path = out.join(name);
                std::fs::write(&path, bytes).map_err(WriteError::at(&path))?;
            }
            clips.push(ExportedClip {
                name: format!("phantom-{score}-{probe:?}-{seed}"),
                score,
                probe,
                seed,
                frames: pixels.len() / (size * size),
                file,
                masks: mask_file,
            });
        }
    }
    let path = out.join("index.json");
    let json = serde_json::json!({ "size": size, "seg_size": seg, "classes": CLASS_NAMES, "clips": clips });
    write_json(&path, &json)?;
    Ok(clips.len())
}

/// The mask of `roi` reduced to `cells × cells` by majority vote.
fn majority_cells(mask: &[u8], width: usize, roi: crate::preprocess::Roi, cells: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(cells * cells);
    for cy in 0..cells {
        let (y0, y1) = (
            roi.y + cy * roi.h / cells,
            roi.y + ((cy + 1) * roi.h / cells).max(cy * roi.h / cells + 1),
        );
        for cx in 0..cells {
            let (x0, x1) = (
                roi.x + cx * roi.w / cells,
                roi.x + ((cx + 1) * roi.w / cells).max(cx * roi.w / cells + 1),
            );
            let mut votes = [0usize; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    if let Some(&class) = mask.get(y * width + x) {
                        votes[usize::from(class.min(2))] += 1;
                    }
                }
            }
            let winner = (0..3).max_by_key(|&c| (votes[c], c)).unwrap_or(0);
            out.push(winner as u8);
        }
    }
    out
}
