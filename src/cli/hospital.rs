//! `pleura send` and `pleura outbox`: a finished exam as the hospital takes
//! it, and what the unit still owes the hospital.

use super::print::say;
use anyhow::{Context, Result, bail};
use pleura::board::BoardProfile;
use pleura::exam::{Journal, ZoneClips, unix_now};
use pleura::hospital::net::Link;
use pleura::hospital::outbox::{Destination, JobState, Outbox, Sender};
use pleura::hospital::{ExamObjects, Station};
use pleura::spec::{AeAddress, HostPort};
use std::path::PathBuf;

/// DICOM over TLS, over the board's `[hospital]` settings.
#[derive(clap::Args, Clone)]
pub(crate) struct TlsArgs {
    /// Talk DICOM to the PACS and the worklist over TLS, trusting the
    /// certificates in this PEM file.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// This unit's certificate chain (PEM), for peers that ask for one.
    #[arg(long, requires = "tls_key")]
    tls_certificate: Option<PathBuf>,
    /// This unit's private key (PEM).
    #[arg(long, requires = "tls_certificate")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The link these flags and `board` ask for.
    pub(crate) fn link(&self, board: &BoardProfile) -> Result<Link> {
        Ok(Link::for_board(
            board,
            self.tls_ca.as_deref(),
            self.tls_certificate.as_deref(),
            self.tls_key.as_deref(),
        )?)
    }
}

/// `pleura send`: which exam, and where its objects go.
#[derive(clap::Args)]
#[group(id = "destination", required = true, multiple = true, args = ["pacs", "hl7", "out"])]
pub(crate) struct SendArgs {
    /// The exam journal: its last exam is sent, with the zone clips saved
    /// beside it.
    journal: PathBuf,
    /// Store the exam's DICOM objects on this PACS (C-STORE), AE@HOST:PORT.
    #[arg(long)]
    pacs: Option<AeAddress>,
    /// Send the exam's HL7 result (ORU^R01) to this receiver over MLLP,
    /// HOST:PORT.
    #[arg(long)]
    hl7: Option<HostPort>,
    /// Write the exam's DICOM files (*.dcm) and its HL7 message
    /// (result.hl7) into this folder instead.
    #[arg(long)]
    out: Option<PathBuf>,
    /// This unit's AE title; the board's `[hospital] station_ae` when not
    /// given.
    #[arg(long, value_parser = pleura::spec::ae_title)]
    station_ae: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// Writes the journal's last exam as files, or queues it in the outbox for
/// the destinations given and delivers it now, reporting each object.
pub(crate) fn send(args: &SendArgs, board: &BoardProfile) -> Result<()> {
    if !args.journal.is_file() {
        bail!("{}: no such exam journal", args.journal.display());
    }
    let exam = Journal::read(&args.journal)?
        .with_context(|| format!("{}: holds no exam", args.journal.display()))?;
    let station = Station::for_board(board, args.station_ae.as_deref(), &board.model);
    let context = || format!("{}: cannot send the exam", args.journal.display());
    if let Some(out) = &args.out {
        let clips = ZoneClips::beside(&args.journal);
        let objects =
            ExamObjects::build(&exam, &clips, &station, ("", "")).with_context(context)?;
        for zone in &objects.zones_without_clip {
            log::warn!(
                "zone {zone} was recorded without a saved clip: its score is sent without it"
            );
        }
        for path in objects.write_to(out)? {
            say!("wrote         {}", path.display());
        }
    }
    let destinations: Vec<Destination> = args
        .pacs
        .iter()
        .cloned()
        .map(Destination::Pacs)
        .chain(args.hl7.iter().cloned().map(Destination::Hl7))
        .collect();
    if destinations.is_empty() {
        return Ok(());
    }
    let outbox = Outbox::for_board(board);
    outbox
        .queue_again(&args.journal, &exam, &destinations, unix_now())
        .with_context(context)?;
    let uid_root = exam.identity.as_ref().map(|i| i.uid_root.as_str());
    let mut sender = Sender::for_board(board, station);
    sender.link = args.tls.link(board)?;
    let deliveries = outbox.deliver_due(&sender, unix_now(), uid_root);
    let mut failed = 0;
    for delivery in &deliveries {
        for (object, said) in &delivery.results {
            say!("{object:<13} {said} ({})", delivery.job.destination);
        }
        if let Some(error) = &delivery.error {
            failed += 1;
            say!("{:<13} {error}", delivery.job.destination);
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} destinations did not take the exam; it stays in the outbox ({}) and \
             the unit tries again with backoff",
            deliveries.len(),
            outbox.dir().display()
        );
    }
    Ok(())
}

/// Lists the outbox: each job's exam, destination and state.
pub(crate) fn list(board: &BoardProfile, json: bool) -> Result<()> {
    let outbox = Outbox::for_board(board);
    let jobs = outbox.jobs()?;
    if json {
        let shown: Vec<serde_json::Value> = jobs
            .iter()
            .map(|(path, job)| match job {
                Ok(job) => serde_json::json!({
                    "file": path,
                    "state": job.state(),
                    "job": job,
                }),
                Err(e) => serde_json::json!({ "file": path, "state": "unreadable", "error": e.to_string() }),
            })
            .collect();
        say!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    if jobs.is_empty() {
        say!("outbox {}: empty", outbox.dir().display());
    }
    for (_, job) in &jobs {
        match job {
            Ok(job) => {
                let state = match job.state() {
                    JobState::Pending => "pending".to_string(),
                    JobState::Sent => "sent".to_string(),
                    JobState::Failed => format!(
                        "failed {} times, next try in {} s: {}",
                        job.attempts,
                        job.next_try_at.saturating_sub(unix_now()),
                        job.last_error.as_deref().unwrap_or("")
                    ),
                };
                say!("{:<16} {:<32} {state}", job.accession, job.destination);
            }
            Err(e) => say!("{:<16} {e}", "unreadable"),
        }
    }
    Ok(())
}
