//! `pleura send`: a finished exam as the hospital takes it.

use super::print::say;
use anyhow::{Context, Result, bail};
use pleura::board::BoardProfile;
use pleura::exam::{Journal, ZoneClips};
use pleura::hospital::net;
use pleura::hospital::{ExamObjects, Station};
use pleura::spec::AeAddress;
use std::path::PathBuf;

/// `pleura send`: which exam, and where its objects go.
#[derive(clap::Args)]
#[group(id = "destination", required = true, multiple = true, args = ["pacs", "out"])]
pub(crate) struct SendArgs {
    /// The exam journal: its last exam is sent, with the zone clips saved
    /// beside it.
    journal: PathBuf,
    /// Store the exam's DICOM objects on this PACS (C-STORE), AE@HOST:PORT.
    #[arg(long)]
    pacs: Option<AeAddress>,
    /// Write the exam's DICOM files (*.dcm) and its HL7 message
    /// (result.hl7) into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// This unit's AE title; the board's `[hospital] station_ae` when not
    /// given.
    #[arg(long, value_parser = pleura::spec::ae_title)]
    station_ae: Option<String>,
}

/// Makes the last exam of the journal into its DICOM objects and HL7
/// message, and writes them.
pub(crate) fn send(args: &SendArgs, board: &BoardProfile) -> Result<()> {
    if !args.journal.is_file() {
        bail!("{}: no such exam journal", args.journal.display());
    }
    let exam = Journal::read(&args.journal)?
        .with_context(|| format!("{}: holds no exam", args.journal.display()))?;
    let station = Station {
        ae_title: args
            .station_ae
            .clone()
            .unwrap_or_else(|| board.hospital.station_ae.clone()),
        board: board.name.clone(),
        software: env!("CARGO_PKG_VERSION").to_string(),
        model: board
            .model
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        institution: board.hospital.institution.clone(),
        screen: (board.display.size[0], board.display.size[1]),
    };
    let clips = ZoneClips::beside(&args.journal);
    let objects = ExamObjects::build(&exam, &clips, &station, ("", ""))
        .with_context(|| format!("{}: cannot make the exam's objects", args.journal.display()))?;
    for zone in &objects.zones_without_clip {
        log::warn!("zone {zone} was recorded without a saved clip: its score is sent without it");
    }
    if let Some(out) = &args.out {
        for path in objects.write_to(out)? {
            say!("wrote         {}", path.display());
        }
    }
    if let Some(pacs) = &args.pacs {
        let instances: Vec<_> = objects.dicom.iter().collect();
        let results = net::store(&station.ae_title, pacs, &instances, net::TIMEOUT)?;
        let mut failed = 0;
        for (instance, result) in instances.iter().zip(results) {
            match result {
                Ok(status) if status.stored() => {
                    say!("{:<13} {status} on {pacs}", instance.file_name)
                }
                Ok(status) => {
                    failed += 1;
                    say!("{:<13} {status} by {pacs}", instance.file_name);
                }
                Err(e) => {
                    failed += 1;
                    say!("{:<13} not sent: {e}", instance.file_name);
                }
            }
        }
        if failed > 0 {
            bail!(
                "{failed} of {} objects were not stored on {pacs}",
                instances.len()
            );
        }
    }
    Ok(())
}
