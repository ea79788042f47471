//! The phantom as a pipeline source (`--source phantom:score=N`): synthetic
//! lung-ultrasound frames that hold no patient data.

use super::{FrameSource, SourceError};
use crate::frame::GrayFrame;
use crate::phantom::{Phantom, PhantomParams, Probe};

/// The rate phantom clips play at.
pub(super) const FRAME_RATE: f64 = 25.0;

/// The phantom as a pipeline source (`--source phantom:score=N`).
pub struct PhantomSource {
    phantom: Phantom,
    name: String,
}

impl PhantomSource {
    /// A source playing a phantom clip.
    pub fn new(params: PhantomParams) -> Self {
        let name = format!(
            "phantom-score{}-{}-seed{}",
            params.score,
            match params.probe {
                Probe::Convex => "convex",
                Probe::Linear => "linear",
            },
            params.seed
        );
        Self {
            phantom: Phantom::new(params),
            name,
        }
    }
}

impl FrameSource for PhantomSource {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        Ok(self.phantom.next().map(|f| f.image))
    }

    fn clip_name(&self) -> &str {
        &self.name
    }

    fn frame_rate(&self) -> Option<f64> {
        Some(FRAME_RATE)
    }
}
