//! The 2.5D input: a frame and two earlier ones as the network's channels.
//!
//! B-lines move with breathing and lung sliding; rib shadows and
//! reverberations do not. A 2.5D model (its file's `history_step` Δ > 0)
//! sees the frames t − 2Δ, t − Δ and t, all cropped to the sector of frame
//! t. The history is causal, so it adds no latency, and it counts every
//! decoded frame of the clip, scored or not, exactly as
//! `pleura dataset export --history-step` wrote the training frames
//! ([`crate::eval::prepare_clip`]). At a clip's start its
//! first frame stands in for the frames before it. Live, the history holds
//! the frames that reached inference: a frame that capture dropped because
//! inference fell behind is not in it, and Δ then spans more time.

use super::{Roi, crop_resize};
use crate::frame::GrayFrame;
use std::collections::VecDeque;

/// How many frames back the earlier planes of a 2.5D input are, oldest
/// first: `2Δ` and `Δ`.
pub fn earlier_offsets(step: usize) -> [usize; 2] {
    [2 * step, step]
}

/// The 2.5D inputs of consecutive `frames` of one clip that are already
/// cropped to the model's square (exported phantom frames): each frame
/// after the crops of [`earlier_offsets`] frames before it, the first
/// frame standing in before the clip's start. Without a step, the frames
/// themselves.
pub fn stack_cropped(frames: &[&[u8]], step: usize) -> Vec<Vec<u8>> {
    (0..frames.len())
        .map(|i| {
            let back = |n: usize| frames[i.saturating_sub(n)];
            match step {
                0 => frames[i].to_vec(),
                _ => [earlier_offsets(step).map(back).concat(), frames[i].to_vec()].concat(),
            }
        })
        .collect()
}

/// The last `2Δ + 1` frames of a clip, for its 2.5D inputs.
#[derive(Debug)]
pub struct FrameHistory {
    step: usize,
    frames: VecDeque<Earlier>,
}

/// A frame of the history and its crop, made once per sector.
#[derive(Debug)]
struct Earlier {
    frame: GrayFrame,
    crop: Option<(Roi, Vec<u8>)>,
}

impl FrameHistory {
    /// An empty history for a model with this `history_step` (0: the model
    /// takes frames alone, and nothing is kept).
    pub fn new(step: usize) -> Self {
        Self {
            step,
            frames: VecDeque::with_capacity(2 * step + 1),
        }
    }

    /// Remembers the clip's next decoded frame.
    pub fn push(&mut self, frame: &GrayFrame) {
        if self.step == 0 {
            return;
        }
        if self.frames.len() == 2 * self.step + 1 {
            self.frames.pop_front();
        }
        self.frames.push_back(Earlier {
            frame: frame.clone(),
            crop: None,
        });
    }

    /// The network input of the newest frame pushed, whose crop is `input`
    /// (`size × size`, cropped to `sector`): `input` itself without a
    /// history, else the crops of the frames `2Δ` and `Δ` before it, then
    /// `input`. An earlier frame that the sector does not fit (the picture
    /// changed size) is replaced by `input`. Each frame is cropped once per
    /// sector: a steady stream crops no frame twice.
    pub fn input(&mut self, input: Vec<u8>, sector: Roi, size: usize) -> Vec<u8> {
        if self.step == 0 {
            return input;
        }
        let newest = self.frames.len().saturating_sub(1);
        let mut stacked = Vec::with_capacity(3 * input.len());
        for back in earlier_offsets(self.step) {
            let crop = self
                .frames
                .get_mut(newest.saturating_sub(back))
                .and_then(|earlier| earlier.crop(sector, size));
            stacked.extend_from_slice(crop.unwrap_or(&input));
        }
        stacked.extend_from_slice(&input);
        if let Some(last) = self.frames.back_mut() {
            last.crop = Some((sector, input));
        }
        stacked
    }
}

impl Earlier {
    /// This frame cropped to `sector` at `size × size`, made on first use.
    fn crop(&mut self, sector: Roi, size: usize) -> Option<&[u8]> {
        let fresh =
            matches!(&self.crop, Some((roi, crop)) if *roi == sector && crop.len() == size * size);
        if !fresh {
            self.crop = crop_resize(&self.frame, sector, size).map(|crop| (sector, crop));
        }
        self.crop.as_ref().map(|(_, crop)| crop.as_slice())
    }
}

/// The network inputs of a run of consecutive decoded `frames` of one clip,
/// all cropped to `sector` (benchmarks and tests feed the model with these).
pub fn clip_inputs(frames: &[GrayFrame], sector: Roi, size: usize, step: usize) -> Vec<Vec<u8>> {
    let mut history = FrameHistory::new(step);
    frames
        .iter()
        .filter_map(|frame| {
            history.push(frame);
            let input = crop_resize(frame, sector, size)?;
            Some(history.input(input, sector, size))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×4 frame of one grey value.
    fn flat(value: u8) -> GrayFrame {
        GrayFrame::new(4, 4, vec![value; 16], u64::from(value)).unwrap()
    }

    fn first_pixels(input: &[u8], side: usize) -> Vec<u8> {
        input.chunks_exact(side * side).map(|p| p[0]).collect()
    }

    #[test]
    fn without_a_step_the_input_is_the_frame_alone() {
        let mut history = FrameHistory::new(0);
        history.push(&flat(7));
        let sector = Roi::full(&flat(7));
        assert_eq!(history.input(vec![7; 4], sector, 2), vec![7; 4]);
    }

    #[test]
    fn the_input_holds_the_frames_two_steps_and_one_step_back_oldest_first() {
        let mut history = FrameHistory::new(2);
        let sector = Roi::full(&flat(0));
        let mut inputs = Vec::new();
        for value in 0..8u8 {
            history.push(&flat(value * 10));
            let input = history.input(vec![value * 10; 4], sector, 2);
            inputs.push(first_pixels(&input, 2));
        }
        assert_eq!(
            inputs[0],
            [0, 0, 0],
            "the first frame stands in for earlier ones"
        );
        assert_eq!(inputs[1], [0, 0, 10]);
        assert_eq!(inputs[3], [0, 10, 30]);
        assert_eq!(inputs[7], [30, 50, 70]);
    }

    #[test]
    fn an_earlier_frame_that_the_sector_does_not_fit_is_replaced_by_the_newest() {
        let mut history = FrameHistory::new(1);
        history.push(&GrayFrame::new(2, 2, vec![9; 4], 0).unwrap());
        history.push(&flat(5));
        let sector = Roi {
            x: 0,
            y: 2,
            w: 4,
            h: 2,
        };
        let input = history.input(vec![5; 4], sector, 2);
        assert_eq!(first_pixels(&input, 2), [5, 5, 5]);
    }
}
