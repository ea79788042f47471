//! `pleura update`: signed firmware bundles into A/B slots, the check
//! before each start, confirmation, status, and (on the build host)
//! manifests.

use super::print::say;
use anyhow::Result;
use clap::Subcommand;
use pleura::board::BoardProfile;
use pleura::update::BootOutcome;
use pleura::update::manifest::Manifest;
use pleura::update::unit::Unit;
use std::path::{Path, PathBuf};

/// `pleura update`.
#[derive(Subcommand)]
pub(crate) enum UpdateCommand {
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

/// Runs a `pleura update` command on the unit `unit` opens; `board` is
/// this unit's profile and `boards` the folder of every profile.
pub(crate) fn run(
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
