//! The command-line layer: argument types (clap), one file per command
//! group, and what the commands print (`print`). It parses and dispatches;
//! the library does the work.

mod dataset;
mod hospital;
mod inspect;
mod live;
mod model;
pub(crate) mod print;
mod update;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pleura::board::BoardProfile;
use pleura::eval::dataset::DatasetKind;
use pleura::model::{LusNet, Precision};
use pleura::update::unit::Unit;
use std::path::{Path, PathBuf};

/// The model shipped with Pleura.
const DEFAULT_MODEL: &str = "models/lusnet-v3.gguf";
/// Where `--source demo` finds its clips.
const DEMO_DIR: &str = "tests/demo";

/// The command line.
#[derive(Parser)]
#[command(
    name = "pleura",
    version,
    about = "Point-of-care lung-ultrasound severity scoring"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Board profile (a file BOARDS/NAME.toml); recognised from
    /// /proc/device-tree/model when not given, else x86_64-dev.
    #[arg(long, global = true, env = "PLEURA_BOARD")]
    board: Option<String>,
    /// Folder of the board profiles.
    #[arg(long, global = true, env = "PLEURA_BOARDS", default_value = "boards")]
    boards: PathBuf,
}

/// The commands.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Play a source live: score every frame, show and record the results.
    Run(Box<live::RunArgs>),
    /// Score one clip: Soldati score, confidence and pathological areas.
    Score {
        /// The clip (any format ffmpeg decodes).
        clip: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Evaluate a model against expert scores on a dataset folder.
    Eval {
        /// Dataset layout.
        #[arg(long)]
        dataset: DatasetKind,
        /// Dataset folder.
        dir: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Write the full report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Use at most this many frames per clip, evenly spaced.
        #[arg(long)]
        max_frames: Option<usize>,
    },
    /// Model files: import trained weights, show a model's description.
    Model {
        #[command(subcommand)]
        command: model::ModelCommand,
    },
    /// Write a synthetic phantom clip with pixel-exact masks.
    Phantom(dataset::PhantomArgs),
    /// Datasets for training.
    Dataset {
        #[command(subcommand)]
        command: dataset::DatasetCommand,
    },
    /// List the V4L2 capture devices (grabbers) with their formats and sizes.
    Devices,
    /// Show the board profile in use: the one --board names, or the one
    /// this machine is recognised as (from /proc/device-tree/model).
    Board,
    /// Firmware updates: install a signed bundle, the check before each
    /// start, confirmation, status, and (on the build host) manifests.
    Update {
        #[command(subcommand)]
        command: update::UpdateCommand,
        /// The installation's root; the board's slots folder when not given.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Exams: show the exam recovered from a journal.
    Exam {
        /// The exam journal.
        journal: PathBuf,
    },
    /// Send a finished exam as the hospital takes it: DICOM clips, a
    /// summary capture and a structured report, and an HL7 result message.
    Send(hospital::SendArgs),
    /// What this unit still owes the hospital: each queued exam's
    /// destination and whether it is pending, sent or failed.
    Outbox {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The model a command runs, and how.
#[derive(clap::Args)]
pub(crate) struct ModelArgs {
    /// Model file (GGUF); models/lusnet-v3.gguf, or the board's for `run`.
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Inference path over the Q8_0 weights: `int8` (Pleura's integer
    /// kernels, the fast path), `f32` (weights dequantized once, f32
    /// products) or `q8` (candle's quantized matmul, ~20× slower at
    /// convolution shapes). All give the same clip scores on ≥ 99 % of
    /// clips. Default: the board's (int8) for `run`, f32 for the rest.
    #[arg(long)]
    pub(crate) precision: Option<Precision>,
}

/// Runs the command `cli` names.
pub(crate) fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => live::run(&args, &board(&cli.board, &cli.boards)?),
        Command::Board => inspect::board(&board(&cli.board, &cli.boards)?),
        Command::Devices => inspect::devices(),
        Command::Exam { journal } => inspect::exam(&journal),
        Command::Send(args) => hospital::send(&args, &board(&cli.board, &cli.boards)?),
        Command::Outbox { json } => hospital::list(&board(&cli.board, &cli.boards)?, json),
        Command::Update { command, root } => {
            let board = || board(&cli.board, &cli.boards);
            let unit = || -> Result<Unit> {
                Ok(Unit::new(&match &root {
                    Some(root) => root.clone(),
                    None => board()?.paths.slots,
                }))
            };
            update::run(command, unit, board, &cli.boards)
        }
        Command::Phantom(args) => dataset::phantom_clip(args),
        Command::Score { clip, model } => model::score(&clip, &model),
        Command::Eval {
            dataset,
            dir,
            model,
            json,
            max_frames,
        } => model::eval(dataset, &dir, &model, json.as_deref(), max_frames),
        Command::Model { command } => model::run(command),
        Command::Dataset { command } => dataset::run(command),
    }
}

/// The board profile: the one named, else the one this machine is.
fn board(name: &Option<String>, boards: &Path) -> Result<BoardProfile> {
    Ok(match name {
        Some(name) => BoardProfile::named(boards, name)?,
        None => {
            let model = std::fs::read_to_string("/proc/device-tree/model").ok();
            BoardProfile::detect(boards, model.as_deref())?
        }
    })
}

/// A side for frames made for the model: what a model file may declare.
pub(crate) fn parse_input_size(text: &str) -> Result<usize, String> {
    // Not a number reads as 0, which no model takes: the same message.
    let side = text.parse::<usize>().unwrap_or(0);
    pleura::model::check_input_size(side)
        .map(|()| side)
        .map_err(|rule| format!("'{text}' is not a model input side ({rule})"))
}

/// Loads a model file, or says that it cannot.
pub(crate) fn load_model(path: &Path, precision: Precision) -> Result<LusNet> {
    LusNet::load(path, precision).with_context(|| "cannot load the model".to_string())
}

impl ModelArgs {
    /// The precision asked for, else f32 (the reference for evaluations).
    pub(crate) fn precision_or_f32(&self) -> Precision {
        self.precision.unwrap_or(Precision::F32)
    }
}

/// The model `--model` names, else the shipped one.
pub(crate) fn model_path(args: &ModelArgs) -> &Path {
    args.model.as_deref().unwrap_or(Path::new(DEFAULT_MODEL))
}
