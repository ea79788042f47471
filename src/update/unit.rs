//! The installation on a unit: two slots, two links and a trial record.
//!
//! ```text
//! ROOT/slots/a/   one version: bin/pleura, models/, boards/, systemd/,
//! ROOT/slots/b/   plus its signed manifest.json and manifest.json.minisig
//! ROOT/current -> slots/b    what the service starts
//! ROOT/good    -> slots/a    the last confirmed version; its binary runs
//!                            the installer and the start check
//! ROOT/trial.json            present while `current` is on trial
//! ROOT/keys/*.pub            the trusted update keys (minisign)
//! ```
//!
//! Every step that changes this state (install, the start check, the
//! confirmation) first takes an exclusive `flock(2)` on the ROOT folder
//! itself ([`Unit::lock`]), so that two of them never interleave; no lock
//! file is created. The lock goes with the process, so a killed installer
//! never leaves the unit locked.
//!
//! Links are switched by creating the new link beside the old one and
//! `rename(2)`-ing it over; files are written whole and synced before the
//! link or record that makes them count. Every intermediate state therefore
//! reads as one of a few cases, which [`Unit::recover`] finishes.

use super::UpdateError;
use super::bundle::Keys;
use super::manifest::{MANIFEST, Manifest, SIGNATURE, hex};
use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The two slots.
pub const SLOTS: [&str; 2] = ["a", "b"];
/// The link the service starts.
pub const CURRENT: &str = "current";
/// The link to the last confirmed version.
pub const GOOD: &str = "good";
/// The trial record's file name.
const TRIAL: &str = "trial.json";

/// A version on trial: started from `current`, not yet confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialState {
    /// The slot on trial.
    pub slot: String,
    /// Its version.
    pub version: Version,
    /// The confirmed version it replaces.
    pub previous: Option<Version>,
    /// Starts so far.
    pub starts: u32,
    /// Starts allowed before rolling back.
    pub max_starts: u32,
}

/// What a step does when another process holds the unit's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// Fail at once with [`UpdateError::Busy`].
    Refuse,
    /// Wait up to this long, then fail with [`UpdateError::Busy`].
    UpTo(Duration),
}

/// The unit's update lock: an exclusive `flock(2)` on the root folder,
/// released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct UnitLock {
    _folder: File,
}

/// One unit's installation under a root folder.
#[derive(Debug, Clone)]
pub struct Unit {
    root: PathBuf,
}

impl Unit {
    /// The installation under `root` (e.g. `/opt/pleura`).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks that the root exists and is a folder.
    pub fn check_root(&self) -> Result<(), UpdateError> {
        let no_root = |why: &str| UpdateError::NoRoot {
            root: self.root.clone(),
            why: why.to_string(),
        };
        match std::fs::metadata(&self.root) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(no_root("is not a folder")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_root("no such folder")),
            Err(e) => Err(UpdateError::io(&self.root, e)),
        }
    }

    /// Takes the unit's update lock (see the module's documentation),
    /// refusing or waiting as `wait` says when another process holds it.
    pub fn lock(&self, wait: LockWait) -> Result<UnitLock, UpdateError> {
        self.check_root()?;
        let folder = File::open(&self.root).map_err(|e| UpdateError::io(&self.root, e))?;
        let started = Instant::now();
        loop {
            match folder.try_lock() {
                Ok(()) => return Ok(UnitLock { _folder: folder }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(UpdateError::io(&self.root, e));
                }
            }
            let waited = match wait {
                LockWait::Refuse => None,
                LockWait::UpTo(limit) if started.elapsed() >= limit => Some(limit),
                LockWait::UpTo(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            return Err(UpdateError::Busy {
                lock: self.root.clone(),
                waited,
            });
        }
    }

    /// The trusted keys' folder.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// A slot's folder.
    pub fn slot_dir(&self, slot: &str) -> PathBuf {
        self.root.join("slots").join(slot)
    }

    /// The slot a link points to, if the link exists.
    pub fn slot_of(&self, link: &str) -> Result<Option<String>, UpdateError> {
        let path = self.root.join(link);
        match std::fs::read_link(&path) {
            Ok(target) => {
                let slot = target
                    .strip_prefix("slots")
                    .ok()
                    .and_then(|s| s.to_str())
                    .filter(|s| SLOTS.contains(s))
                    .ok_or_else(|| {
                        UpdateError::Damaged(format!(
                            "{} points to {}, not to a slot",
                            path.display(),
                            target.display()
                        ))
                    })?;
                Ok(Some(slot.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UpdateError::io(&path, e)),
        }
    }

    /// Points `link` at `slot`, atomically, and syncs the root folder.
    pub fn point(&self, link: &str, slot: &str) -> Result<(), UpdateError> {
        let path = self.root.join(link);
        let fresh = self.root.join(format!("{link}.new"));
        match std::fs::remove_file(&fresh) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(UpdateError::io(&fresh, e));
            }
            _ => {}
        }
        std::os::unix::fs::symlink(Path::new("slots").join(slot), &fresh)
            .map_err(|e| UpdateError::io(&fresh, e))?;
        std::fs::rename(&fresh, &path).map_err(|e| UpdateError::io(&path, e))?;
        sync_dir(&self.root)
    }

    /// The trial record, if a version is on trial.
    pub fn trial(&self) -> Result<Option<TrialState>, UpdateError> {
        let path = self.root.join(TRIAL);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                UpdateError::Damaged(format!("{}: unreadable trial record: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UpdateError::io(&path, e)),
        }
    }

    /// Writes the trial record whole, synced, then syncs the root folder.
    pub fn write_trial(&self, trial: &TrialState) -> Result<(), UpdateError> {
        let path = self.root.join(TRIAL);
        let bytes =
            serde_json::to_vec_pretty(trial).map_err(|e| UpdateError::io(&path, e.into()))?;
        write_synced(&path, &bytes)?;
        sync_dir(&self.root)
    }

    /// Removes the trial record and syncs the root folder.
    pub fn clear_trial(&self) -> Result<(), UpdateError> {
        let path = self.root.join(TRIAL);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(UpdateError::io(&path, e));
            }
            _ => {}
        }
        sync_dir(&self.root)
    }

    /// Finishes whatever an interruption left half done, without deciding
    /// anything new:
    /// - `current` missing: point it at `good` (or `good` at `current`);
    /// - a trial record for a slot `current` does not point to: the install
    ///   stopped before the switch, or a rollback after it; drop the record;
    /// - no trial but `current` ≠ `good`: a confirmation stopped half way;
    ///   finish it.
    pub fn recover(&self) -> Result<(), UpdateError> {
        let (current, good) = (self.slot_of(CURRENT)?, self.slot_of(GOOD)?);
        let (current, good) = match (current, good) {
            (None, None) => return Err(UpdateError::NothingInstalled(self.root.clone())),
            (None, Some(good)) => {
                log::warn!("update: {CURRENT} was missing; pointing it at slot {good}");
                self.point(CURRENT, &good)?;
                (good.clone(), good)
            }
            (Some(current), None) => {
                log::warn!("update: {GOOD} was missing; pointing it at slot {current}");
                self.point(GOOD, &current)?;
                (current.clone(), current)
            }
            (Some(current), Some(good)) => (current, good),
        };
        match self.trial()? {
            Some(trial) if trial.slot != current => {
                log::warn!(
                    "update: dropping the trial of {} (slot {}), which never started",
                    trial.version,
                    trial.slot
                );
                self.clear_trial()
            }
            Some(_) => Ok(()),
            None if current != good => {
                log::warn!("update: finishing the confirmation of slot {current}");
                self.point(GOOD, &current)
            }
            None => Ok(()),
        }
    }

    /// Checks a slot against its manifest: the signature with `keys`, then
    /// every file's size and SHA-256. Returns the manifest.
    pub fn verify_slot(&self, slot: &str, keys: &Keys) -> Result<Manifest, UpdateError> {
        let dir = self.slot_dir(slot);
        let damaged = |why: String| UpdateError::Damaged(format!("slot {slot}: {why}"));
        let manifest_path = dir.join(MANIFEST);
        let bytes = std::fs::read(&manifest_path)
            .map_err(|e| damaged(format!("{}: {e}", manifest_path.display())))?;
        let signature = std::fs::read_to_string(dir.join(SIGNATURE))
            .map_err(|e| damaged(format!("{SIGNATURE}: {e}")))?;
        keys.verify(&bytes, &signature)
            .map_err(|e| damaged(e.to_string()))?;
        let manifest = Manifest::parse(&bytes).map_err(|e| damaged(e.to_string()))?;
        for file in &manifest.files {
            let path = dir.join(&file.path);
            let (size, sha256) =
                hash_file(&path).map_err(|e| damaged(format!("{}: {e}", file.path)))?;
            if size != file.size || sha256 != file.sha256 {
                return Err(damaged(format!("{} differs from its manifest", file.path)));
            }
        }
        Ok(manifest)
    }

    /// The manifest in a slot, read without checking (for display and for
    /// the installed version; checks use [`Unit::verify_slot`]).
    pub fn manifest(&self, slot: &str) -> Result<Manifest, UpdateError> {
        let path = self.slot_dir(slot).join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| UpdateError::io(&path, e))?;
        Manifest::parse(&bytes)
    }
}

/// Size and SHA-256 of a file.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((size, hex(&hasher.finalize())));
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
}

/// Writes `path` whole through a synced temporary file and a rename.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    crate::atomic_write::write_atomically(path, crate::atomic_write::Durability::Synced, |out| {
        std::io::Write::write_all(out, bytes)
    })
    .map_err(|e| UpdateError::io(path, e))
}

/// Syncs a folder, so that the names created, renamed or removed in it
/// survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), UpdateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| UpdateError::io(dir, e))
}
