//! Display fixtures shared by the display tests and the display benchmark:
//! scored frames without a model (phantom frames whose exact masks stand in
//! for the segmentation, with v3 head outputs that say B-lines,
//! consolidation and an abnormal pleura and decide score 2, scored by the
//! real clip tracker), and a file that
//! stands in for a framebuffer device.

use pleura::display::{FbGeometry, Framebuffer, Rotation};
use pleura::model::FramePrediction;
use pleura::model::heads::{ClipTerms, HeadOutputs};
use pleura::phantom::{Phantom, PhantomParams, Probe};
use pleura::preprocess::Roi;
use pleura::scoring::{ClipTracker, ScoredFrame};
use std::path::Path;
use std::sync::Arc;

/// Cells per side of the segmentation grid.
const SEG: usize = 32;

/// `count` scored frames of a score-2 phantom clip at `width`×`height`.
pub fn phantom_scored_frames(count: u64, width: usize, height: usize) -> Vec<ScoredFrame> {
    let clip: Arc<str> = Arc::from("phantom-score2");
    let mut tracker = ClipTracker::new(3);
    Phantom::new(PhantomParams {
        score: 2,
        probe: Probe::Convex,
        frames: count,
        width,
        height,
        seed: 7,
    })
    .map(|frame| {
        let (w, h) = (frame.image.width, frame.image.height);
        let seg_labels = (0..SEG * SEG)
            .map(|i| {
                frame.mask[((i / SEG) * h / SEG + h / (2 * SEG)) * w
                    + (i % SEG) * w / SEG
                    + w / (2 * SEG)]
            })
            .collect();
        let prediction = FramePrediction {
            score_probs: [0.05, 0.15, 0.7, 0.1],
            seg_size: SEG,
            seg_labels,
            heads: Some(HeadOutputs {
                finding_logits: [-3.0, 3.0, 1.0, 2.0],
                clip: Some(ClipTerms {
                    attention: 0.0,
                    value: 0.5,
                    cutpoints: [-3.0, -1.0, 3.0],
                }),
            }),
        };
        let scores = tracker.update(&prediction);
        ScoredFrame {
            clip: clip.clone(),
            frame: frame.image,
            sector: Roi { x: 0, y: 0, w, h },
            provisional: false,
            prediction,
            scores,
        }
    })
    .collect()
}

/// A framebuffer of `geometry` backed by a new file at `path`.
pub fn fake_framebuffer(path: &Path, geometry: FbGeometry, rotation: Rotation) -> Framebuffer {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("fake framebuffer file");
    Framebuffer::with_geometry(file, path, geometry, rotation).expect("fake framebuffer")
}
