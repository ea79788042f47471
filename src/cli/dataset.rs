//! `pleura phantom` and `pleura dataset`: synthetic clips, and frames for
//! the trainer.

use super::print::{progress_line, say};
use super::{ModelArgs, load_model, model_path, parse_input_size};
use anyhow::Result;
use clap::Subcommand;
use pleura::eval::dataset::DatasetKind;
use pleura::eval::{ExportClips, ExportOptions, export_dataset};
use pleura::phantom::{PhantomParams, Probe, write_clip};
use std::path::PathBuf;

/// `pleura phantom`: one synthetic clip with pixel-exact masks.
#[derive(clap::Args)]
pub(crate) struct PhantomArgs {
    /// Soldati score 0–3 of the simulated lung.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    score: u8,
    /// Probe geometry: convex or linear.
    #[arg(long, default_value = "convex")]
    probe: Probe,
    /// Number of frames.
    #[arg(long, default_value_t = 100)]
    frames: u64,
    /// Image size WxH.
    #[arg(long, default_value = "256x256", value_parser = pleura::spec::size)]
    size: (usize, usize),
    /// Random seed; the same seed gives the same clip.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder: frames/, masks/ and labels.json.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the phantom clip `args` describe.
pub(crate) fn phantom_clip(args: PhantomArgs) -> Result<()> {
    let PhantomArgs {
        score,
        probe,
        frames,
        size: (width, height),
        seed,
        out,
    } = args;
    let params = PhantomParams {
        score,
        probe,
        frames,
        width,
        height,
        seed,
    };
    let written = write_clip(params, &out)?;
    say!(
        "wrote {written} phantom frames and masks to {}",
        out.display()
    );
    Ok(())
}

/// `pleura dataset`.
#[derive(Subcommand)]
pub(crate) enum DatasetCommand {
    /// Segmentation Dice of a model on a phantom set (from `dataset phantom`).
    Dice {
        /// The phantom set.
        dir: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Write phantom clips with masks for the trainer (both probes, all scores).
    Phantom {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Clips per score and probe.
        #[arg(long, default_value_t = 12)]
        clips: u64,
        /// Frames per clip.
        #[arg(long, default_value_t = 8)]
        frames: u64,
        /// Side of the square frames: a model input side (a multiple of 16
        /// from 32 to 512).
        #[arg(long, default_value_t = 128, value_parser = parse_input_size)]
        size: usize,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a dataset's rated clips (or all, with `--unrated`) as
    /// preprocessed frames for the trainer.
    Export {
        /// Dataset layout.
        #[arg(long)]
        dataset: DatasetKind,
        /// Dataset folder.
        dir: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Side of the square frames: a model input side (a multiple of 16
        /// from 32 to 512).
        #[arg(long, default_value_t = 128, value_parser = parse_input_size)]
        size: usize,
        /// At most this many frames per clip, evenly spaced.
        #[arg(long, default_value_t = 48)]
        max_frames: usize,
        /// Also write the clips without a score (for self-supervised
        /// pretraining); their score is `null` in the index.
        #[arg(long)]
        unrated: bool,
        /// Also write each frame's two earlier frames, this many and twice
        /// this many decoded frames before it (a 2.5D input); 0: none.
        #[arg(long, default_value_t = 0)]
        history_step: usize,
    },
}

/// Runs a `pleura dataset` command.
pub(crate) fn run(command: DatasetCommand) -> Result<()> {
    match command {
        DatasetCommand::Dice { dir, model } => {
            let model = load_model(model_path(&model), model.precision_or_f32())?;
            let result = pleura::eval::segmentation::phantom_dice(&model, &dir)?;
            say!("frames        {}", result.frames);
            for (name, dice) in result.classes.iter().zip(&result.dice) {
                match dice {
                    Some(d) => say!("Dice {name:<14}{d:.3}"),
                    None => say!("Dice {name:<14}n/a (class absent)"),
                }
            }
            Ok(())
        }
        DatasetCommand::Phantom {
            out,
            clips,
            frames,
            size,
            seed,
        } => {
            let written = pleura::phantom::export_training_set(&out, clips, frames, size, seed)?;
            say!("exported {written} phantom clips to {}", out.display());
            Ok(())
        }
        DatasetCommand::Export {
            dataset,
            dir,
            out,
            size,
            max_frames,
            unrated,
            history_step,
        } => {
            let options = ExportOptions {
                size,
                max_frames: Some(max_frames),
                clips: if unrated {
                    ExportClips::All
                } else {
                    ExportClips::Rated
                },
                history_step,
            };
            let (exported, skipped) = export_dataset(dataset, &dir, &out, options, progress_line)?;
            for s in &skipped {
                eprintln!("skipped {}: {}", s.name, s.reason);
            }
            say!(
                "exported {exported} clips to {} ({} skipped)",
                out.display(),
                skipped.len()
            );
            Ok(())
        }
    }
}
