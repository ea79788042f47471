//! The `pleura` command line: parses arguments and calls the library.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use embedded_graphics::prelude::Size;
use pleura::board::BoardProfile;
use pleura::display::{DisplaySetup, DisplaySpec, ExamOptions};
use pleura::eval::dataset::DatasetKind;
use pleura::eval::{
    EvalReport, ExportClips, ExportOptions, evaluate, export_dataset, predict_clip, prepare_clip,
};
use pleura::exam::{Journal, Protocol};
use pleura::input::{spawn_evdev, spawn_stdin_keys};
use pleura::model::heads::{self, FINDING_THRESHOLD, FINDINGS, Heads};
use pleura::model::import::{Quantization, import_safetensors};
use pleura::model::lusnet::macs_per_frame;
use pleura::model::{LusNet, Precision};
use pleura::phantom::{PhantomParams, Probe, parse_size, write_clip};
use pleura::pipeline::{RunOptions, Stages};
use pleura::preprocess::{Roi, SectorMode};
use pleura::record::{EndReason, FrameLog, Recorder, RunReport};
use pleura::scoring::{clip_findings, clip_score, mean_class_fraction};
use pleura::source::SourceSpec;
use pleura::update::BootOutcome;
use pleura::update::health::self_test;
use pleura::update::manifest::Manifest;
use pleura::update::unit::Unit;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Prints a line on standard output, like `println!`, but a closed output
/// (`pleura model info | head -1`) is not an error: see [`write_stdout`].
macro_rules! say {
    () => { write_stdout(format_args!("")) };
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}

/// The model shipped with Pleura.
const DEFAULT_MODEL: &str = "models/lusnet-v3.gguf";
/// Where `--source demo` finds its clips.
const DEMO_DIR: &str = "tests/demo";

#[derive(Parser)]
#[command(
    name = "pleura",
    version,
    about = "Point-of-care lung-ultrasound severity scoring"
)]
struct Cli {
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

#[derive(Subcommand)]
enum Command {
    /// Play a source live: score every frame, show and record the results.
    Run(Box<RunArgs>),
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
        command: ModelCommand,
    },
    /// Write a synthetic phantom clip with pixel-exact masks.
    Phantom {
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
        #[arg(long, default_value = "256x256", value_parser = parse_size)]
        size: (usize, usize),
        /// Random seed; the same seed gives the same clip.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder: frames/, masks/ and labels.json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Datasets for training.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
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
        command: UpdateCommand,
        /// The installation's root; the board's slots folder when not given.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Exams: show the exam recovered from a journal.
    Exam {
        /// The exam journal.
        journal: PathBuf,
    },
}

#[derive(Subcommand)]
enum UpdateCommand {
    /// Verify a bundle and install it into the inactive slot, on trial.
    Install {
        /// The bundle (.tar made by scripts/make-update).
        bundle: PathBuf,
    },
    /// Before each start (run by the confirmed version): finish interrupted
    /// steps, count a trial's starts, roll back a failed trial, and check
    /// the version about to start against its signed manifest.
    Boot,
    /// Confirm the version on trial (`pleura run` does this itself once its
    /// self-test passes).
    Confirm,
    /// Show the slots, their versions and any trial, as JSON.
    Status,
    /// Write the manifest for a payload folder (on the build host).
    Manifest {
        /// The payload folder.
        dir: PathBuf,
        /// The version of this build.
        #[arg(long)]
        version: semver::Version,
        /// The oldest installed version it may update.
        #[arg(long)]
        min_installed: semver::Version,
        /// The boards it runs on (repeat for several): profiles in --boards,
        /// whose `target` every program in the payload must be built for.
        #[arg(long = "for-board", required = true)]
        for_boards: Vec<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Where frames come from: demo (the bundled clips), file:PATH,
    /// dir:PATH (PNG/JPEG frames in name order) or v4l:/dev/videoN. The
    /// board's grabber when not given.
    #[arg(long)]
    source: Option<SourceSpec>,
    #[command(flatten)]
    model: ModelArgs,
    /// Use this sector (x,y,w,h in pixels) instead of finding it.
    #[arg(long)]
    roi: Option<Roi>,
    /// Play recordings as fast as possible, scoring every frame, instead
    /// of in real time.
    #[arg(long)]
    no_pace: bool,
    /// Where to show frames: none; auto (the first of card0, fb0, a window
    /// that opens); fb:/dev/fbN or drm:/dev/dri/cardN (optionally
    /// ,rotate=90|180|270) for the bedside screen; window; png:DIR for the
    /// bedside screen as PNG files; frames:DIR for annotated frames and a
    /// contact sheet. The board's screen when not given.
    #[arg(long)]
    display: Option<DisplaySpec>,
    /// Write one picture in this many (png and frames displays).
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Size of the PNG or window bedside screen, WxH; the board's screen
    /// size when not given.
    #[arg(long, value_parser = parse_size)]
    screen: Option<(usize, usize)>,
    /// Exam protocol (12, 14 or blue): keys then start an exam (s), record
    /// (r or space), freeze (f), go to the next (n) or previous (p) zone,
    /// redo a zone (d) and finish (x).
    #[arg(long)]
    exam: Option<Protocol>,
    /// The exam journal (JSON lines, fsynced); an unfinished exam in it is
    /// resumed. DATA/exam.jsonl in the board's data folder when not given.
    #[arg(long, requires = "exam")]
    journal: Option<PathBuf>,
    /// Input devices (/dev/input/eventN: buttons, keypads, touchscreens);
    /// may be given several times; the board's when none is given. Keys are
    /// also read from standard input.
    #[arg(long)]
    input: Vec<PathBuf>,
    /// Write the run report (scores, series, drops, latencies) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write one JSON line per scored frame here.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Folder of the demo clips.
    #[arg(long, default_value = DEMO_DIR)]
    demo_dir: PathBuf,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Model file (GGUF); models/lusnet-v3.gguf, or the board's for `run`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Inference path over the Q8_0 weights: `int8` (Pleura's integer
    /// kernels, the fast path), `f32` (weights dequantized once, f32
    /// products) or `q8` (candle's quantized matmul, ~20× slower at
    /// convolution shapes). All give the same clip scores on ≥ 99 % of
    /// clips. Default: the board's (int8) for `run`, f32 for the rest.
    #[arg(long)]
    precision: Option<Precision>,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Convert trainer weights (safetensors) into a model file (GGUF).
    Import {
        /// Weights written by scripts/train.
        weights: PathBuf,
        /// Weight storage: q8_0 or f32.
        #[arg(long, default_value = "q8_0")]
        quantize: Quantization,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a model file's description.
    Info {
        /// The model file.
        #[arg(default_value = DEFAULT_MODEL)]
        model: PathBuf,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
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

fn main() {
    if let Err(e) = pleura::model::check_thread_vars() {
        eprintln!("pleura: {e}");
        std::process::exit(1);
    }
    pleura::model::init_threads();
    quiet_library_backtraces();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("pleura: {e:#}");
        let partly_written = matches!(
            e.downcast_ref(),
            Some(pleura::update::UpdateError::Unfinished { .. })
        );
        std::process::exit(if partly_written {
            pleura::update::EXIT_PARTLY_WRITTEN
        } else {
            1
        });
    }
}

/// Keeps `RUST_BACKTRACE` for panics (real bugs) but stops libraries
/// (candle, anyhow) from capturing a backtrace into ordinary errors, which
/// then printed it to the user. `RUST_LIB_BACKTRACE`, when set, wins.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before any other thread.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run_live(&args, &board(&cli.board, &cli.boards)?),
        Command::Board => {
            say!("{:#?}", board(&cli.board, &cli.boards)?);
            Ok(())
        }
        Command::Devices => {
            let devices = pleura::source::list_devices();
            if devices.is_empty() {
                say!("no V4L2 capture device found (/dev/video*)");
            }
            for device in devices {
                say!(
                    "{}  '{}'  bus {}  driver {}",
                    device.path.display(),
                    device.identity.card,
                    device.identity.bus,
                    device.driver
                );
                for (format, sizes) in device.formats {
                    say!("    {format}: {}", sizes.join(", "));
                }
            }
            Ok(())
        }
        Command::Update { command, root } => {
            let board = || board(&cli.board, &cli.boards);
            let unit = || -> Result<Unit> {
                Ok(Unit::new(&match &root {
                    Some(root) => root.clone(),
                    None => board()?.paths.slots,
                }))
            };
            update(command, unit, board, &cli.boards)
        }
        Command::Exam { journal } => {
            if let Err(e) = std::fs::metadata(&journal)
                && e.kind() == std::io::ErrorKind::NotFound
            {
                bail!("{}: no such exam journal", journal.display());
            }
            let exam = Journal::read(&journal)?
                .with_context(|| format!("{}: holds no exam", journal.display()))?;
            #[derive(serde::Serialize)]
            struct Shown<'a> {
                #[serde(flatten)]
                exam: &'a pleura::exam::Exam,
                zone_names: &'static [&'static str],
                total: u32,
                max_total: u32,
            }
            let shown = Shown {
                exam: &exam,
                zone_names: exam.protocol.zones(),
                total: exam.total(),
                max_total: exam.max_total(),
            };
            say!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(())
        }
        Command::Phantom {
            score,
            probe,
            frames,
            size: (width, height),
            seed,
            out,
        } => {
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
        Command::Score { clip, model } => score(&clip, &model),
        Command::Eval {
            dataset,
            dir,
            model,
            json,
            max_frames,
        } => eval(dataset, &dir, &model, json.as_deref(), max_frames),
        Command::Model { command } => match command {
            ModelCommand::Import {
                weights,
                quantize,
                output,
            } => {
                let mut file = import_safetensors(&weights, quantize)?;
                file.write(&output)?;
                let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
                say!(
                    "wrote {} ({:.2} MB, {} tensors, sha256 {})",
                    output.display(),
                    size as f64 / 1e6,
                    file.tensors.len(),
                    file.meta.tensors_sha256
                );
                Ok(())
            }
            ModelCommand::Info { model } => {
                let net = LusNet::load(&model, Precision::F32)?;
                let meta = net.meta();
                say!("{}", serde_json::to_string_pretty(meta)?);
                let macs = macs_per_frame(
                    meta.input_size,
                    meta.input_channels(),
                    meta.widths,
                    meta.seg_classes.len(),
                ) + net.heads().map_or(0, Heads::macs);
                say!(
                    "cost: {:.1} M multiply-accumulates per frame",
                    macs as f64 / 1e6
                );
                Ok(())
            }
        },
        Command::Dataset {
            command: DatasetCommand::Dice { dir, model },
        } => {
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
        Command::Dataset {
            command:
                DatasetCommand::Phantom {
                    out,
                    clips,
                    frames,
                    size,
                    seed,
                },
        } => {
            let written = pleura::phantom::export_training_set(&out, clips, frames, size, seed)?;
            say!("exported {written} phantom clips to {}", out.display());
            Ok(())
        }
        Command::Dataset {
            command:
                DatasetCommand::Export {
                    dataset,
                    dir,
                    out,
                    size,
                    max_frames,
                    unrated,
                    history_step,
                },
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

/// Sets `stop` on the first Ctrl-C or SIGTERM; a second one exits at once.
fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("pleura: stopping, flushing outputs (again to quit at once)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
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

fn update(
    command: UpdateCommand,
    unit: impl Fn() -> Result<Unit>,
    board: impl Fn() -> Result<BoardProfile>,
    boards: &Path,
) -> Result<()> {
    match command {
        UpdateCommand::Install { bundle } => {
            let board = board()?;
            let done = pleura::update::install(&unit()?, &bundle, &board.name, &board.update)?;
            if done.on_trial {
                say!(
                    "installed {} into slot {}; it starts on trial at the next start and is \
                     kept once it proves healthy",
                    done.version,
                    done.slot
                );
            } else {
                say!("installed {} into slot {}", done.version, done.slot);
            }
        }
        UpdateCommand::Boot => match pleura::update::boot(&unit()?)? {
            BootOutcome::Confirmed(version) => say!("starting {version}"),
            BootOutcome::Trial {
                version,
                start,
                max_starts,
            } => say!("starting {version} on trial (start {start} of {max_starts})"),
            BootOutcome::RolledBack { from, to, reason } => {
                say!("rolled back from {from} to {to}: {reason}")
            }
        },
        UpdateCommand::Confirm => match pleura::update::confirm(&unit()?)? {
            Some(version) => say!("confirmed {version}"),
            None => say!("no version is on trial"),
        },
        UpdateCommand::Status => {
            let status = pleura::update::status(&unit()?)?;
            say!("{}", serde_json::to_string_pretty(&status)?);
        }
        UpdateCommand::Manifest {
            dir,
            version,
            min_installed,
            for_boards,
        } => {
            let boards = for_boards
                .iter()
                .map(|name| BoardProfile::named(boards, name))
                .collect::<Result<Vec<_>, _>>()?;
            let manifest = Manifest::describe(&dir, version, min_installed, &boards)?;
            say!("{}", serde_json::to_string_pretty(&manifest)?);
        }
    }
    Ok(())
}

/// On a version's trial start, proves it healthy with the self-test and
/// confirms it; otherwise fails, and the next start counts toward rollback.
fn prove_trial(model: &LusNet, board: &BoardProfile, started: Instant) -> Result<()> {
    let unit = Unit::new(&board.paths.slots);
    let trial = match pleura::update::running_trial(&unit) {
        Ok(Some(trial)) => trial,
        Ok(None) => return Ok(()),
        Err(e) => {
            log::warn!("cannot read the update state: {e}");
            return Ok(());
        }
    };
    eprintln!("pleura: version {} is on trial; self-test", trial.version);
    let heartbeat = Box::new(pleura::service::Watchdog::new());
    match self_test(model, &board.update, started, Some(heartbeat)) {
        Ok(healthy) => {
            pleura::update::confirm(&unit)?;
            eprintln!(
                "pleura: version {} confirmed: {} frames scored {:.1} s after start",
                trial.version,
                healthy.frames,
                healthy.after.as_secs_f64()
            );
            Ok(())
        }
        Err(reason) => bail!(
            "version {} on trial failed its self-test: {reason}; the next start counts \
             toward rolling back to {}",
            trial.version,
            trial
                .previous
                .map_or("the previous version".to_string(), |v| v.to_string())
        ),
    }
}

fn run_live(args: &RunArgs, board: &BoardProfile) -> Result<()> {
    let started = Instant::now();
    let display = match &args.display {
        Some(display) => display.clone(),
        None => board.display_spec()?,
    };
    if args.exam.is_some() {
        display.check_bedside("--exam")?;
    }
    if !args.input.is_empty() {
        display.check_bedside("--input")?;
    }
    if args.screen.is_some() {
        display.check_bedside("--screen")?;
        if matches!(
            display,
            DisplaySpec::Framebuffer { .. } | DisplaySpec::Kms { .. }
        ) {
            bail!(
                "--screen sizes the png: and window screens; a framebuffer or DRM display has \
                 the size of its panel"
            );
        }
    }
    if let Some(path) = &args.report {
        RunReport::check_destination(path).context("cannot write the run report")?;
    }
    let log = args.log.as_deref().map(FrameLog::create).transpose()?;
    pleura::model::set_threads(board.threads);
    let stop = stop_on_signal()?;
    let model_path = args.model.model.clone().unwrap_or(board.model.clone());
    let precision = args.model.precision.unwrap_or(board.precision);
    let model = load_model(&model_path, precision)?;
    prove_trial(&model, board, started)?;
    let classes = model.meta().seg_classes.clone();
    let source_spec = args.source.clone().unwrap_or_else(|| board.source_spec());
    let source = source_spec
        .open(&args.demo_dir)
        .with_context(|| format!("cannot open the source {source_spec}"))?;
    let (input_sender, inputs) = crossbeam_channel::unbounded();
    let exam = match args.exam {
        Some(protocol) => Some(ExamOptions {
            protocol,
            journal: Journal::open(&args.journal.clone().unwrap_or_else(|| board.journal()))?,
        }),
        None => None,
    };
    let (width, height) = args.screen.unwrap_or((
        board.display.size[0] as usize,
        board.display.size[1] as usize,
    ));
    let renderer = display.open(DisplaySetup {
        classes: classes.clone(),
        every: args.every,
        screen: Size::new(width as u32, height as u32),
        exam,
        inputs,
        input_sender: input_sender.clone(),
    })?;
    if display.check_bedside("keys").is_ok() {
        let keys = board.key_map()?;
        spawn_stdin_keys(keys.clone(), input_sender.clone());
        let devices = if args.input.is_empty() {
            &board.input.devices
        } else {
            &args.input
        };
        for device in devices {
            if let Err(e) = spawn_evdev(device, keys.clone(), input_sender.clone()) {
                log::warn!(
                    "input device {}: {e}; going on without it",
                    device.display()
                );
            }
        }
    }
    let options = RunOptions {
        pace: !args.no_pace,
        sector: args.roi.map_or(SectorMode::Auto, SectorMode::Fixed),
        stop,
    };
    let stages = Stages {
        source,
        model: &model,
        renderer,
        recorder: match args.report {
            Some(_) => Recorder::new(classes, log),
            None => Recorder::new(classes, log).without_series(),
        },
        heartbeat: Some(Box::new(pleura::service::Watchdog::new())),
    };
    pleura::service::ready(&format!("scoring {source_spec}"));
    let report = pleura::pipeline::run(
        stages,
        &options,
        &source_spec.to_string(),
        &model_path.display().to_string(),
    );
    print_run(&report);
    if let Some(path) = &args.report {
        report.write(path)?;
        say!("report        {}", path.display());
    }
    match &report.end {
        EndReason::EndOfStream if report.frames.scored == 0 => bail!(
            "no frame could be scored ({} captured, {} corrupt, {} rejected{}{})",
            report.frames.captured,
            report.frames.corrupt,
            report.frames.rejected,
            if report.rejected.is_empty() {
                String::new()
            } else {
                format!(": {}", reasons(&report.rejected))
            },
            if args.roi.is_some() {
                "; check --roi"
            } else {
                ""
            }
        ),
        EndReason::EndOfStream | EndReason::Interrupted => Ok(()),
        failure => bail!("{failure}"),
    }
}

fn print_run(report: &RunReport) {
    for clip in &report.clips {
        say!("clip          {}", clip.name);
        say!("frames        {}", clip.frames);
        let s = clip.sector;
        say!("sector        x={} y={} w={} h={}", s.x, s.y, s.w, s.h);
        say!(
            "score         {} (confidence {:.2}, {})",
            clip.score,
            clip.confidence,
            if clip.stable {
                "stable"
            } else {
                "not yet stable"
            }
        );
        say!(
            "p(score)      {}",
            clip.probs.map(|p| format!("{p:.2}")).join("  ")
        );
        for (name, fraction) in &clip.areas {
            say!("{name:<14}{:.1} % of the sector", 100.0 * fraction);
        }
        if !clip.findings.is_empty() {
            say!("findings      {}", findings_line(&clip.findings));
        }
        if !clip.rejected.is_empty() {
            say!("rejected      {}", reasons(&clip.rejected));
        }
        say!();
    }
    for clip in &report.unscored {
        say!("clip          {}", clip.name);
        say!("score         none: no frame is a scan");
        say!("rejected      {}", reasons(&clip.rejected));
        say!();
    }
    let f = &report.frames;
    say!(
        "run           {} · {} frames scored in {:.1} s ({:.1} fps)",
        report.end,
        f.scored,
        report.wall_s,
        report.fps
    );
    say!(
        "frames        {} captured · {} dropped · {} corrupt · {} rejected · {} displayed{}",
        f.captured,
        f.dropped,
        f.corrupt,
        f.rejected,
        f.rendered,
        if f.no_signal > 0 {
            format!(" · {} no-signal reports", f.no_signal)
        } else {
            String::new()
        }
    );
    if !report.rejected.is_empty() {
        say!("rejected      {}", reasons(&report.rejected));
    }
    let stage = |name: &str| report.latency.get(name).copied().unwrap_or_default();
    let (inference, total) = (stage("inference"), stage("end_to_end"));
    say!(
        "latency       inference {:.1} ms (p99 {:.1}) · capture to output {:.1} ms (p99 {:.1})",
        inference.median_ms,
        inference.p99_ms,
        total.median_ms,
        total.p99_ms
    );
    for error in &report.output_errors {
        say!("output error  {error}");
    }
}

/// A side for frames made for the model: what a model file may declare.
fn parse_input_size(text: &str) -> Result<usize, String> {
    // Not a number reads as 0, which no model takes: the same message.
    let side = text.parse::<usize>().unwrap_or(0);
    pleura::model::check_input_size(side)
        .map(|()| side)
        .map_err(|rule| format!("'{text}' is not a model input side ({rule})"))
}

/// Rejection counts as `no_image 12 · frozen 3`.
fn reasons(counts: &std::collections::BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
    parts.join(" · ")
}

fn load_model(path: &Path, precision: Precision) -> Result<LusNet> {
    LusNet::load(path, precision).with_context(|| "cannot load the model".to_string())
}

impl ModelArgs {
    /// The precision asked for, else f32 (the reference for evaluations).
    fn precision_or_f32(&self) -> Precision {
        self.precision.unwrap_or(Precision::F32)
    }
}

/// The model `--model` names, else the shipped one.
fn model_path(args: &ModelArgs) -> &Path {
    args.model.as_deref().unwrap_or(Path::new(DEFAULT_MODEL))
}

fn score(clip: &Path, args: &ModelArgs) -> Result<()> {
    let model = load_model(model_path(args), args.precision_or_f32())?;
    let meta = model.meta();
    let prepared = prepare_clip(clip, meta.input_size, None, meta.history_step)?;
    let predictions = predict_clip(&model, &prepared)?;
    let (Some(clip_result), Some(roi)) = (clip_score(&predictions), prepared.roi) else {
        bail!(
            "{}: no frame can be scored: {}",
            clip.display(),
            prepared.rejections()
        );
    };
    say!("clip          {}", clip.display());
    say!("frames        {}", clip_result.frames);
    if !prepared.rejected.is_empty() {
        say!("rejected      {}", prepared.rejections());
    }
    say!(
        "sector        x={} y={} w={} h={}",
        roi.x,
        roi.y,
        roi.w,
        roi.h
    );
    say!(
        "score         {} (confidence {:.2})",
        clip_result.score,
        clip_result.confidence
    );
    say!(
        "p(score)      {}",
        clip_result.probs.map(|p| format!("{p:.2}")).join("  ")
    );
    for (i, name) in meta.seg_classes.iter().enumerate().skip(1) {
        say!(
            "{name:<14}{:.1} % of the sector",
            100.0 * mean_class_fraction(&predictions, i)
        );
    }
    if let Some(findings) = clip_findings(&predictions) {
        say!("findings      {}", findings_line(&heads::named(findings)));
    }
    Ok(())
}

/// `b_lines yes 0.93  consolidation no 0.12 ...`: each finding, its call
/// at [`FINDING_THRESHOLD`] and its probability.
fn findings_line(findings: &std::collections::BTreeMap<String, f32>) -> String {
    FINDINGS
        .iter()
        .filter_map(|&name| {
            let p = *findings.get(name)?;
            let call = if p >= FINDING_THRESHOLD { "yes" } else { "no" };
            Some(format!("{name} {call} {p:.2}"))
        })
        .collect::<Vec<_>>()
        .join("  ")
}

fn eval(
    dataset: DatasetKind,
    dir: &Path,
    args: &ModelArgs,
    json: Option<&Path>,
    max_frames: Option<usize>,
) -> Result<()> {
    let model = load_model(model_path(args), args.precision_or_f32())?;
    let report = evaluate(dataset, dir, &model, max_frames, progress_line)?;
    for s in &report.skipped {
        eprintln!("skipped {}: {}", s.name, s.reason);
    }
    print_report(&report);
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        say!("report written to {}", path.display());
    }
    Ok(())
}

/// Writes one line to standard output. When the reader has gone (a closed
/// pipe), the rest of the output is dropped quietly and the command goes
/// on, so that a run still writes its report and exits as it would have;
/// another write error is reported once, on standard error.
fn write_stdout(line: std::fmt::Arguments) {
    static GONE: AtomicBool = AtomicBool::new(false);
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("pleura: cannot write to standard output: {e}; output dropped");
        }
    }
}

fn progress_line(done: usize, total: usize, name: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "\r[{done:>4}/{total}] {name:<48}");
    if done == total {
        let _ = writeln!(err);
    }
}

fn print_report(r: &EvalReport) {
    let v = &r.video;
    say!(
        "clips scored {} · skipped {}",
        r.clips_scored,
        r.clips_skipped
    );
    say!(
        "video  accuracy {:.3}  macro-F1 {:.3}  weighted-F1 {:.3}  QWK {:.3}  MAE {:.3}",
        v.accuracy,
        v.macro_f1,
        v.weighted_f1,
        v.qwk,
        v.mae
    );
    if let Some(exam) = &r.exam {
        say!(
            "exam   MAE of the total {:.2} over {} patients",
            exam.mae,
            exam.patients
        );
    }
    for (name, f) in &r.findings {
        match f.auc {
            Some(auc) => say!(
                "{name} AUC {auc:.3} over {} labelled clips ({} present)",
                f.clips,
                f.positive
            ),
            None => say!(
                "{name} AUC n/a ({} labelled clips, {} present: needs both answers)",
                f.clips,
                f.positive
            ),
        }
    }
    if let (Some(median), Some(p90)) = (
        r.bline.negative_fraction_median,
        r.bline.negative_fraction_p90,
    ) {
        say!(
            "B-line tint on B-line-negative clips: median {:.1} %, p90 {:.1} % of the sector",
            100.0 * median,
            100.0 * p90
        );
    }
    say!("confusion (rows = expert 0–3, columns = Pleura 0–3)");
    for (i, row) in v.confusion.0.iter().enumerate() {
        say!(
            "  {i} │ {}",
            row.iter().map(|c| format!("{c:>4}")).collect::<String>()
        );
    }
}
