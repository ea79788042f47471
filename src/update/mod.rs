//! Signed firmware updates with A/B slots, a trial start and rollback.
//!
//! A unit in the field is updated by a script, often by someone who is not
//! an engineer and sometimes on bad power. The rules:
//!
//! 1. **Nothing unsigned runs.** A bundle's manifest is signed with
//!    minisign (Ed25519); the manifest gives every payload file's size and
//!    SHA-256. The unit trusts the keys in `ROOT/keys/`; several may be
//!    trusted at once, for key rotation.
//! 2. **Nothing unchecked is written.** The whole bundle is checked before
//!    the first byte is written: the signature, the product and board, the
//!    version (no downgrade below the installed one, and the installed one
//!    must be at least the bundle's `min_installed`), and every payload
//!    entry (listed, plain relative path, regular file, size and hash).
//! 3. **The running version is never touched.** The payload goes to the
//!    other slot, each file synced; then the trial is recorded and `current`
//!    is switched by `rename(2)`.
//! 4. **A new version must prove itself.** It starts on trial and is
//!    confirmed once it has scored the board's `health_frames` frames within
//!    `health_timeout_s` seconds of starting (`pleura run` checks this with
//!    a self-test before it opens the grabber). Before every start the last
//!    confirmed version's binary runs [`boot`], which counts the starts and,
//!    after `max_starts` without a confirmation, switches back.
//! 5. **Any interruption is recoverable.** Every step ends in a state that
//!    [`unit::Unit::recover`] completes, and [`boot`] also checks the slot
//!    about to start against its signed manifest, falling back to the other
//!    slot if it is damaged. A power cut at any step boundary leaves a unit
//!    that starts a good, signed version (tested by killing the installer
//!    at each boundary).
//!
//! While a version is on trial a second update is refused: the trial must
//! end (confirmed or rolled back) first, so that there is always a
//! confirmed version to fall back to.
//!
//! Only one step changes the unit at a time: [`install`], [`boot`] and
//! [`confirm`] hold the unit's lock ([`unit::Unit::lock`]) throughout. A
//! second installer is refused at once (a person started it and can run it
//! again; waiting would only queue a bundle that the trial rule then
//! refuses). The start check and the confirmation wait up to
//! [`LOCK_WAIT`] instead: nobody is there to retry them, and the installer
//! they wait for is about to finish. [`status`] takes no lock: it changes
//! nothing, every state on disk is a consistent one (files are written
//! whole, links switched by rename), and a lock would make it wait behind a
//! slow install or make an installer started meanwhile be refused.

pub mod bundle;
pub mod health;
pub mod manifest;
pub mod unit;

use crate::board::UpdateProfile;
use bundle::{Keys, SignedBundle};
use manifest::{MANIFEST, SIGNATURE};
use semver::Version;
use std::path::{Path, PathBuf};
use std::time::Duration;
use unit::{CURRENT, GOOD, LockWait, SLOTS, TrialState, Unit, sync_dir, write_synced};

/// How long [`boot`] and [`confirm`] wait for another step holding the
/// unit's lock (an installer) before they give up.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The exit status of `pleura update install` when it failed after it had
/// begun to write the inactive slot ([`UpdateError::Unfinished`]); any
/// other failure wrote nothing. `scripts/install-update` tells them apart.
pub const EXIT_PARTLY_WRITTEN: i32 = 3;

/// Test hook: the environment variable naming a step boundary at which the
/// updater kills itself with SIGKILL, as a power cut would stop it.
pub const CRASH_AT: &str = "PLEURA_CRASH_AT";

/// The step boundaries of [`install`], in order. `file` comes after each
/// payload file is written and synced (the hook fires at the first).
pub const INSTALL_STEPS: [&str; 6] = [
    "verified",
    "cleared",
    "file",
    "payload-synced",
    "trial-recorded",
    "switched",
];
/// The step boundaries of [`confirm`].
pub const CONFIRM_STEPS: [&str; 2] = ["trial-cleared", "confirmed"];
/// The step boundaries of [`boot`].
pub const BOOT_STEPS: [&str; 2] = ["start-counted", "rolled-back"];

/// Why an update step failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The bundle was refused; nothing on the unit was changed.
    #[error("update refused: {0}")]
    Rejected(String),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// No key to check signatures with.
    #[error("no trusted update key (*.pub) in {0}")]
    NoKeys(PathBuf),
    /// Nothing is installed under the root.
    #[error("no Pleura version is installed in {0}")]
    NothingInstalled(PathBuf),
    /// A version is on trial.
    #[error(
        "update refused: version {0} is still on trial; start Pleura until it is confirmed \
         (or rolled back), then update again"
    )]
    TrialPending(Version),
    /// An installed slot does not match its signed manifest.
    #[error("installation damaged: {0}")]
    Damaged(String),
    /// A payload program is built for another processor than a board the
    /// bundle is for.
    #[error(
        "{file} is built for {found}, but board {board} runs {target}, which needs \
         {expected} programs; build it for that target (scripts/build-firmware {board})"
    )]
    WrongMachine {
        /// The program, relative to the payload folder.
        file: String,
        /// The processor it is built for.
        found: String,
        /// The board.
        board: String,
        /// The board profile's target triple.
        target: String,
        /// The processor that target needs.
        expected: String,
    },
    /// A board's target triple names a processor Pleura cannot check
    /// programs against.
    #[error(
        "board {board}'s target {target} is not one whose programs can be checked (x86_64, \
         aarch64, arm, i686 or riscv targets)"
    )]
    UnknownTarget {
        /// The board.
        board: String,
        /// Its profile's target triple.
        target: String,
    },
    /// The installation's root is missing or is not a folder.
    #[error(
        "{root}: {why}, so no Pleura installation is there (check --root, or the board \
         profile's paths.slots)"
    )]
    NoRoot {
        /// The root asked for.
        root: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Another process holds the unit's lock: an update step is running.
    #[error("{}", busy_message(.lock, .waited))]
    Busy {
        /// The locked folder (the unit's root).
        lock: PathBuf,
        /// How long this step waited, if it waited.
        waited: Option<Duration>,
    },
    /// The version on trial did not prove healthy at this start.
    #[error(
        "version {version} on trial failed its self-test: {reason}; the next start counts \
         toward rolling back to {}",
        .previous.as_ref().map_or("the previous version".to_string(), |v| v.to_string())
    )]
    SelfTestFailed {
        /// The version on trial.
        version: Version,
        /// Why the self-test failed.
        reason: Box<health::Unhealthy>,
        /// The version a rollback returns to, if known.
        previous: Option<Version>,
    },
    /// An install failed after it began writing the inactive slot; `left`
    /// says truthfully what is on the unit now.
    #[error("{cause}; {left}")]
    Unfinished {
        /// Why it failed.
        cause: Box<UpdateError>,
        /// What was left, and what the next start does.
        left: String,
    },
}

fn busy_message(lock: &Path, waited: &Option<Duration>) -> String {
    let wait = match waited {
        Some(waited) => format!("gave up after waiting {} s: ", waited.as_secs()),
        None => "update refused: ".to_string(),
    };
    format!(
        "{wait}another update is in progress on this unit: another pleura process holds the \
         lock on {} (flock); let it finish, then try again",
        lock.display()
    )
}

impl UpdateError {
    fn io(path: &Path, cause: std::io::Error) -> Self {
        UpdateError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    /// The slot written.
    pub slot: String,
    /// The version installed.
    pub version: Version,
    /// Whether it starts on trial (false for a first installation).
    pub on_trial: bool,
}

/// Installs a bundle on the unit under `unit`, for the board `board`.
pub fn install(
    unit: &Unit,
    bundle: &Path,
    board: &str,
    trial: &UpdateProfile,
) -> Result<Installed, UpdateError> {
    let _lock = unit.lock(LockWait::Refuse)?;
    let keys = Keys::load(&unit.keys_dir())?;
    let signed = SignedBundle::open(bundle, &keys)?;
    let manifest = &signed.manifest;
    let installed = match unit.recover() {
        Ok(()) => Some(installed_state(unit)?),
        Err(UpdateError::NothingInstalled(_)) => None,
        Err(e) => return Err(e),
    };
    if !manifest.boards.iter().any(|b| b == board) {
        return Err(UpdateError::Rejected(format!(
            "the bundle is for {}, and this unit is a {board}",
            manifest.boards.join(", ")
        )));
    }
    if let Some((good, version, pending)) = &installed {
        if let Some(pending) = pending {
            return Err(UpdateError::TrialPending(pending.version.clone()));
        }
        if manifest.version < *version {
            return Err(UpdateError::Rejected(format!(
                "version {} is older than the installed {version} (no downgrades)",
                manifest.version
            )));
        }
        if *version < manifest.min_installed {
            return Err(UpdateError::Rejected(format!(
                "version {} needs {} or newer installed first; this unit has {version}",
                manifest.version, manifest.min_installed
            )));
        }
        log::info!(
            "update: slot {good} holds {version}; installing {}",
            manifest.version
        );
    }
    signed.check_payload()?;
    step("verified");

    let good = installed.as_ref().map(|(good, ..)| good.as_str());
    let slot = SLOTS
        .into_iter()
        .find(|s| Some(*s) != good)
        .unwrap_or(SLOTS[0]);
    let held = unit.manifest(slot).ok().map(|m| m.version);
    let previous = installed.map(|(_, version, _)| version);
    write_slot(unit, &signed, slot, previous, trial)
        .map_err(|cause| abandon(unit, &keys, slot, manifest, held, cause))
}

/// The writing half of [`install`]: clears `slot`, unpacks the payload
/// into it, then records the trial and switches `current` (or, on a first
/// installation, points both links at it).
fn write_slot(
    unit: &Unit,
    signed: &SignedBundle,
    slot: &str,
    previous: Option<Version>,
    trial: &UpdateProfile,
) -> Result<Installed, UpdateError> {
    let dir = unit.slot_dir(slot);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(UpdateError::io(&dir, e));
        }
        _ => {}
    }
    std::fs::create_dir_all(&dir).map_err(|e| UpdateError::io(&dir, e))?;
    sync_dir(dir.parent().unwrap_or(unit.root()))?;
    step("cleared");

    signed.unpack(&dir, |_| {
        step("file");
        Ok(())
    })?;
    write_synced(&dir.join(MANIFEST), &signed.manifest_bytes)?;
    write_synced(&dir.join(SIGNATURE), signed.signature.as_bytes())?;
    sync_tree(&dir)?;
    step("payload-synced");

    let version = signed.manifest.version.clone();
    let Some(previous) = previous else {
        // A first installation: nothing to fall back to, so no trial.
        unit.point(CURRENT, slot)?;
        unit.point(GOOD, slot)?;
        return Ok(Installed {
            slot: slot.into(),
            version,
            on_trial: false,
        });
    };
    unit.write_trial(&TrialState {
        slot: slot.into(),
        version: version.clone(),
        previous: Some(previous),
        starts: 0,
        max_starts: trial.max_starts,
    })?;
    step("trial-recorded");
    unit.point(CURRENT, slot)?;
    step("switched");
    Ok(Installed {
        slot: slot.into(),
        version,
        on_trial: true,
    })
}

/// After an install failed part way (`cause`: a full disk, an I/O error),
/// undoes what it can and says what is left: the trial record and the
/// half-written `slot` are removed unless `current` already points to it.
/// `held` is the version the slot held before it was cleared.
fn abandon(
    unit: &Unit,
    keys: &Keys,
    slot: &str,
    manifest: &manifest::Manifest,
    held: Option<Version>,
    cause: UpdateError,
) -> UpdateError {
    let version = &manifest.version;
    let unfinished = |left: String| UpdateError::Unfinished {
        cause: Box::new(cause),
        left,
    };
    let current = unit.slot_of(CURRENT).ok().flatten();
    if current.as_deref() == Some(slot) {
        // Only a step after the switch failed (syncing the root folder, or
        // pointing `good` on a first installation): the switch stands.
        let how = match unit.trial() {
            Ok(Some(_)) => "on trial ",
            _ => "",
        };
        return unfinished(format!(
            "the installation did not finish cleanly, but {CURRENT} already points to slot \
             {slot}: {version} starts {how}at the next start"
        ));
    }
    if let Ok(Some(trial)) = unit.trial()
        && trial.slot == slot
        && let Err(e) = unit.clear_trial()
    {
        log::warn!("update: cannot remove the trial record: {e}");
    }
    let runs = match &current {
        Some(current) => match unit.manifest(current) {
            Ok(m) => format!(
                "the unit starts {} from slot {current} as before",
                m.version
            ),
            Err(_) => format!("the unit starts slot {current} as before"),
        },
        None => "nothing is installed yet".to_string(),
    };
    let dir = unit.slot_dir(slot);
    let removed = match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => sync_dir(dir.parent().unwrap_or(unit.root())).map_err(|e| match e {
            UpdateError::Io { cause, .. } => cause,
            other => std::io::Error::other(other.to_string()),
        }),
    };
    let held = match held {
        Some(held) => format!(" (the copy of {held} it held before is gone)"),
        None => String::new(),
    };
    unfinished(match removed {
        Ok(()) => format!("NOT installed: slot {slot} was emptied again{held}; {runs}"),
        Err(e) => {
            let whole = unit.verify_slot(slot, keys).ok();
            match (whole, &current) {
                (Some(whole), Some(other)) => format!(
                    "NOT installed: slot {slot} holds a complete, unconfirmed copy of {} that \
                     could not be removed ({}: {e}); it starts only if slot {other} is found \
                     damaged; {runs}",
                    whole.version,
                    dir.display()
                ),
                _ => format!(
                    "NOT installed: slot {slot} holds a partial, unconfirmed copy that no \
                     start will pick; it could not be removed ({}: {e}){held}; {runs}",
                    dir.display()
                ),
            }
        }
    })
}

/// What the start check decided.
#[derive(Debug, Clone, PartialEq)]
pub enum BootOutcome {
    /// The confirmed version starts.
    Confirmed(Version),
    /// A version on trial starts; this is its `start`-th start.
    Trial {
        /// Its version.
        version: Version,
        /// This start's number, from 1.
        start: u32,
        /// Starts allowed.
        max_starts: u32,
    },
    /// The trial failed; the previous version starts again.
    RolledBack {
        /// The version abandoned.
        from: Version,
        /// The version that starts.
        to: Version,
        /// Why.
        reason: String,
    },
}

/// The check before every start, run by the last confirmed version's
/// binary (systemd's `ExecStartPre`): finishes interrupted steps, counts a
/// trial's starts and rolls it back when they are used up, and makes sure
/// that what starts matches its signed manifest.
pub fn boot(unit: &Unit) -> Result<BootOutcome, UpdateError> {
    let _lock = unit.lock(LockWait::UpTo(LOCK_WAIT))?;
    let keys = Keys::load(&unit.keys_dir())?;
    unit.recover()?;
    let current = unit
        .slot_of(CURRENT)?
        .ok_or_else(|| UpdateError::NothingInstalled(unit.root().into()))?;
    if let Some(mut trial) = unit.trial()? {
        let verdict = if trial.starts >= trial.max_starts {
            Err(format!(
                "it did not report healthy in {} start(s)",
                trial.starts
            ))
        } else {
            unit.verify_slot(&current, &keys).map_err(|e| e.to_string())
        };
        return match verdict {
            Ok(_) => {
                trial.starts += 1;
                unit.write_trial(&trial)?;
                step("start-counted");
                Ok(BootOutcome::Trial {
                    version: trial.version,
                    start: trial.starts,
                    max_starts: trial.max_starts,
                })
            }
            Err(reason) => {
                let good = unit
                    .slot_of(GOOD)?
                    .ok_or_else(|| UpdateError::NothingInstalled(unit.root().into()))?;
                let to = unit.verify_slot(&good, &keys)?.version;
                unit.point(CURRENT, &good)?;
                step("rolled-back");
                unit.clear_trial()?;
                // The failed version must never be started again, not even
                // as a fallback for a damaged slot: remove it.
                let failed = unit.slot_dir(&trial.slot);
                if let Err(e) = std::fs::remove_dir_all(&failed) {
                    log::warn!("update: cannot remove {}: {e}", failed.display());
                }
                log::error!(
                    "update: rolled back from {} to {to}: {reason}",
                    trial.version
                );
                Ok(BootOutcome::RolledBack {
                    from: trial.version,
                    to,
                    reason,
                })
            }
        };
    }
    match unit.verify_slot(&current, &keys) {
        Ok(manifest) => Ok(BootOutcome::Confirmed(manifest.version)),
        Err(damage) => {
            // The confirmed version is damaged (a failing card?): start the
            // other slot if it still holds a good signed version.
            let other = SLOTS
                .into_iter()
                .find(|s| *s != current)
                .unwrap_or(SLOTS[0]);
            let manifest = unit.verify_slot(other, &keys).map_err(|_| damage)?;
            log::error!(
                "update: slot {current} is damaged; starting slot {other} ({})",
                manifest.version
            );
            unit.point(CURRENT, other)?;
            unit.point(GOOD, other)?;
            Ok(BootOutcome::Confirmed(manifest.version))
        }
    }
}

/// Confirms the version on trial, if any: it becomes the one to fall back
/// to. Returns its version.
pub fn confirm(unit: &Unit) -> Result<Option<Version>, UpdateError> {
    let _lock = unit.lock(LockWait::UpTo(LOCK_WAIT))?;
    let Some(trial) = unit.trial()? else {
        return Ok(None);
    };
    if unit.slot_of(CURRENT)?.as_deref() != Some(trial.slot.as_str()) {
        return Err(UpdateError::Damaged(format!(
            "the trial is of slot {}, but {CURRENT} points elsewhere",
            trial.slot
        )));
    }
    unit.clear_trial()?;
    step("trial-cleared");
    unit.point(GOOD, &trial.slot)?;
    step("confirmed");
    Ok(Some(trial.version))
}

/// The trial that the running program belongs to, if it was started from
/// the slot on trial: only that program may confirm it.
pub fn running_trial(unit: &Unit) -> Result<Option<TrialState>, UpdateError> {
    let Some(trial) = unit.trial()? else {
        return Ok(None);
    };
    if unit.slot_of(CURRENT)?.as_deref() != Some(trial.slot.as_str()) {
        return Ok(None);
    }
    let exe = std::env::current_exe().and_then(|p| p.canonicalize());
    let slot = unit.slot_dir(&trial.slot).canonicalize();
    Ok(match (exe, slot) {
        (Ok(exe), Ok(slot)) if exe.starts_with(&slot) => Some(trial),
        _ => None,
    })
}

/// What is installed, for `pleura update status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The root folder.
    pub root: PathBuf,
    /// The slot `current` points to, and its version.
    pub current: Option<(String, Version)>,
    /// The slot `good` points to, and its version.
    pub good: Option<(String, Version)>,
    /// The trial, if one is pending.
    pub trial: Option<TrialState>,
}

/// Reads the state without changing anything, and without the unit's
/// lock (see the module's documentation). A missing root is an error.
pub fn status(unit: &Unit) -> Result<Status, UpdateError> {
    unit.check_root()?;
    let version_of = |link| -> Result<Option<(String, Version)>, UpdateError> {
        Ok(match unit.slot_of(link)? {
            Some(slot) => {
                let version = unit.manifest(&slot)?.version;
                Some((slot, version))
            }
            None => None,
        })
    };
    Ok(Status {
        root: unit.root().to_path_buf(),
        current: version_of(CURRENT)?,
        good: version_of(GOOD)?,
        trial: unit.trial()?,
    })
}

/// The confirmed slot, its version, and the pending trial.
fn installed_state(unit: &Unit) -> Result<(String, Version, Option<TrialState>), UpdateError> {
    let good = unit
        .slot_of(GOOD)?
        .ok_or_else(|| UpdateError::NothingInstalled(unit.root().into()))?;
    let version = unit.manifest(&good)?.version;
    Ok((good, version, unit.trial()?))
}

/// Syncs every folder under `dir`, deepest first, then `dir`'s parent.
fn sync_tree(dir: &Path) -> Result<(), UpdateError> {
    let mut folders = vec![dir.to_path_buf()];
    let mut index = 0;
    while index < folders.len() {
        let entries =
            std::fs::read_dir(&folders[index]).map_err(|e| UpdateError::io(&folders[index], e))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(entry.path());
            }
        }
        index += 1;
    }
    for folder in folders.iter().rev() {
        sync_dir(folder)?;
    }
    sync_dir(dir.parent().unwrap_or(dir))
}

/// Marks a step boundary (see [`CRASH_AT`]).
fn step(name: &str) {
    log::debug!("update: step {name}");
    if std::env::var_os(CRASH_AT).is_some_and(|at| at == name) {
        // SAFETY: raise(2) has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}
