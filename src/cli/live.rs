//! `pleura run`: the bedside program, assembled by [`pleura::bedside`]
//! from the board profile and these flags.

use super::print::{print_run, reasons, say};
use super::{DEMO_DIR, ModelArgs};
use anyhow::{Context, Result, bail};
use pleura::bedside::{Hospital, LiveOptions};
use pleura::board::BoardProfile;
use pleura::display::DisplaySpec;
use pleura::exam::Protocol;
use pleura::hospital::Station;
use pleura::hospital::outbox::{Destination, Outbox, Sender};
use pleura::preprocess::Roi;
use pleura::record::EndReason;
use pleura::source::SourceSpec;
use pleura::spec::{AeAddress, HostPort};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `pleura run`: what to play, with which model, shown and recorded where.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
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
    /// Hold each clip's first frames until its sector is locked (32
    /// frames), instead of scoring them at once on a provisional sector:
    /// every frame is then cropped to the locked sector, and the first
    /// score comes 32 frames late.
    #[arg(long, conflicts_with = "roi")]
    wait_for_sector: bool,
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
    #[arg(long, value_parser = pleura::spec::size)]
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
    /// The PACS finished exams are stored on, AE@HOST:PORT; the board's
    /// `[hospital] pacs` when not given.
    #[arg(long)]
    pacs: Option<AeAddress>,
    /// The HL7 receiver results go to, HOST:PORT; the board's
    /// `[hospital] hl7` when not given.
    #[arg(long)]
    hl7: Option<HostPort>,
    /// This unit's AE title; the board's `[hospital] station_ae` when not
    /// given.
    #[arg(long, value_parser = pleura::spec::ae_title)]
    station_ae: Option<String>,
    /// The modality worklist asked for the scheduled patients when an exam
    /// starts, AE@HOST:PORT; the board's `[hospital] worklist` when not
    /// given.
    #[arg(long, requires = "exam")]
    worklist: Option<AeAddress>,
    #[command(flatten)]
    tls: super::hospital::TlsArgs,
}

/// Plays the run the flags ask for on `board`, prints it and writes its
/// report; fails when no frame could be scored or a stage failed.
pub(crate) fn run(args: &RunArgs, board: &BoardProfile) -> Result<()> {
    let options = LiveOptions {
        source: args.source.clone(),
        demo_dir: args.demo_dir.clone(),
        model: args.model.model.clone(),
        precision: args.model.precision,
        roi: args.roi,
        wait_for_sector: args.wait_for_sector,
        pace: !args.no_pace,
        display: args.display.clone(),
        every: args.every,
        screen: args.screen,
        exam: args.exam,
        journal: args.journal.clone(),
        inputs: args.input.clone(),
        report: args.report.clone(),
        log: args.log.clone(),
        stop: stop_on_signal()?,
        hospital: Some(hospital(args, board)?),
    };
    let report = pleura::bedside::run(board, options)?;
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

/// The run's outbox, its destinations (the flags', else the board's) and
/// its sender.
fn hospital(args: &RunArgs, board: &BoardProfile) -> Result<Hospital> {
    let pacs = args.pacs.clone().or_else(|| board.hospital.pacs.clone());
    let hl7 = args.hl7.clone().or_else(|| board.hospital.hl7.clone());
    let model = args
        .model
        .model
        .clone()
        .unwrap_or_else(|| board.model.clone());
    let station = Station::for_board(board, args.station_ae.as_deref(), &model);
    let mut sender = Sender::for_board(board, station);
    sender.link = args.tls.link(board)?;
    Ok(Hospital {
        outbox: Outbox::for_board(board),
        destinations: pacs
            .into_iter()
            .map(Destination::Pacs)
            .chain(hl7.map(Destination::Hl7))
            .collect(),
        sender,
        worklist: args
            .worklist
            .clone()
            .or_else(|| board.hospital.worklist.clone()),
    })
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
