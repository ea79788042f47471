//! Reading a bundle: a tar whose first entry is the manifest, whose second
//! is the manifest's minisign signature, and whose other entries are the
//! payload files the manifest lists, in any order.
//!
//! The signature is checked before anything else in the bundle is looked
//! at. The payload is then read twice: once to check it (nothing written),
//! once to write it into a slot, checking it again as it goes.

use super::UpdateError;
use super::manifest::{MANIFEST, MAX_MANIFEST_BYTES, Manifest, SIGNATURE, hex};
use minisign_verify::{PublicKey, Signature};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The public keys a unit trusts: every `*.pub` file (minisign format) in
/// its keys folder. Several keys may be trusted at once, so that a new
/// signing key can be rolled out before the old one is retired.
pub struct Keys {
    dir: PathBuf,
    keys: Vec<(String, PublicKey)>,
}

impl Keys {
    /// Reads the keys in `dir`; a folder without a readable key is an error.
    pub fn load(dir: &Path) -> Result<Self, UpdateError> {
        let mut keys = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| UpdateError::io(dir, e))?;
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        paths.sort();
        for path in paths {
            match PublicKey::from_file(&path) {
                Ok(key) => keys.push((path.display().to_string(), key)),
                Err(e) => log::warn!("update key {}: unreadable ({e}); ignored", path.display()),
            }
        }
        if keys.is_empty() {
            return Err(UpdateError::NoKeys(dir.to_path_buf()));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    /// Checks `signature` over `data` against every trusted key.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<(), UpdateError> {
        let signature = Signature::decode(signature).map_err(|e| {
            UpdateError::Rejected(format!("the manifest's signature is unreadable: {e}"))
        })?;
        if self
            .keys
            .iter()
            .any(|(_, key)| key.verify(data, &signature, false).is_ok())
        {
            return Ok(());
        }
        Err(UpdateError::Rejected(format!(
            "the manifest's signature does not verify with any of the {} trusted key(s) in {}: \
             the bundle was altered or signed by an unknown key",
            self.keys.len(),
            self.dir.display()
        )))
    }
}

/// A bundle whose manifest signature has been verified.
pub struct SignedBundle {
    /// The bundle file.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The manifest's bytes, as signed.
    pub manifest_bytes: Vec<u8>,
    /// The signature file's text.
    pub signature: String,
}

impl SignedBundle {
    /// Opens `path` and verifies the manifest's signature with `keys`.
    /// Nothing but the first two entries is read.
    pub fn open(path: &Path, keys: &Keys) -> Result<Self, UpdateError> {
        let file = File::open(path).map_err(|e| UpdateError::io(path, e))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = archive.entries().map_err(|e| bad_tar(path, e))?;
        let mut next = |name: &str| -> Result<Vec<u8>, UpdateError> {
            let missing = || {
                UpdateError::Rejected(format!(
                    "{} is not an update bundle: it does not start with {name}",
                    path.display()
                ))
            };
            let entry = entries.next().ok_or_else(missing)?;
            let entry = entry.map_err(|e| bad_tar(path, e))?;
            if entry.path_bytes().as_ref() != name.as_bytes()
                || !entry.header().entry_type().is_file()
                || entry.size() > MAX_MANIFEST_BYTES
            {
                return Err(missing());
            }
            let mut bytes = Vec::new();
            entry
                .take(MAX_MANIFEST_BYTES)
                .read_to_end(&mut bytes)
                .map_err(|e| bad_tar(path, e))?;
            Ok(bytes)
        };
        let manifest_bytes = next(MANIFEST)?;
        let signature = String::from_utf8(next(SIGNATURE)?).map_err(|_| {
            UpdateError::Rejected("the manifest's signature is not text".to_string())
        })?;
        keys.verify(&manifest_bytes, &signature)?;
        let manifest = Manifest::parse(&manifest_bytes)?;
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
            manifest_bytes,
            signature,
        })
    }

    /// Reads the whole payload and checks it against the manifest, writing
    /// nothing: see [`SignedBundle::unpack`] for what is refused.
    pub fn check_payload(&self) -> Result<(), UpdateError> {
        self.each_payload_file(|_, _| Ok(Box::new(std::io::sink())), |_| Ok(()))
    }

    /// Writes the payload under `dest`, each file synced to disk before the
    /// next, then calls `written` with its path. Refused: an entry that is
    /// not a regular file (a symlink, a link, a device, a folder), a file
    /// the manifest does not list or that comes twice, a size or SHA-256
    /// that differs from the manifest, and a listed file that is missing.
    pub fn unpack(
        &self,
        dest: &Path,
        mut written: impl FnMut(&str) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        self.each_payload_file(
            |relative, executable| {
                let path = dest.join(relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| UpdateError::io(parent, e))?;
                }
                let file = File::create(&path).map_err(|e| UpdateError::io(&path, e))?;
                use std::os::unix::fs::PermissionsExt;
                let mode = if executable { 0o755 } else { 0o644 };
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|e| UpdateError::io(&path, e))?;
                Ok(Box::new(SyncedFile { file, path }))
            },
            |relative| written(relative),
        )
    }

    fn each_payload_file(
        &self,
        mut open: impl FnMut(&str, bool) -> Result<Box<dyn Sink>, UpdateError>,
        mut done: impl FnMut(&str) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        let path = &self.path;
        let file = File::open(path).map_err(|e| UpdateError::io(path, e))?;
        let mut archive = tar::Archive::new(file);
        let mut seen = BTreeSet::new();
        for (index, entry) in archive.entries().map_err(|e| bad_tar(path, e))?.enumerate() {
            let mut entry = entry.map_err(|e| bad_tar(path, e))?;
            if index < 2 {
                continue; // the manifest and its signature, already verified
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                let what = if kind.is_symlink() {
                    "a symlink"
                } else if kind.is_hard_link() {
                    "a hard link"
                } else if kind.is_dir() {
                    "a folder"
                } else {
                    "not a regular file"
                };
                return Err(UpdateError::Rejected(format!(
                    "the bundle entry {name} is {what}; only regular files are installed"
                )));
            }
            let listed = self.manifest.file(&name).ok_or_else(|| {
                UpdateError::Rejected(format!(
                    "the bundle holds {name}, which the manifest does not list"
                ))
            })?;
            if !seen.insert(name.clone()) {
                return Err(UpdateError::Rejected(format!(
                    "the bundle holds {name} twice"
                )));
            }
            if entry.size() != listed.size {
                return Err(UpdateError::Rejected(format!(
                    "{name} is {} bytes; the manifest says {}",
                    entry.size(),
                    listed.size
                )));
            }
            let mut sink = open(&name, listed.executable)?;
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                let n = entry.read(&mut buffer).map_err(|e| bad_tar(path, e))?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                hasher.update(&buffer[..n]);
                sink.write_all(&buffer[..n])?;
            }
            let sha256 = hex(&hasher.finalize());
            if total != listed.size || sha256 != listed.sha256 {
                return Err(UpdateError::Rejected(format!(
                    "{name} does not match the manifest (SHA-256 {sha256}, expected {}): \
                     the bundle is damaged or was altered",
                    listed.sha256
                )));
            }
            sink.finish()?;
            done(&name)?;
        }
        if let Some(missing) = self.manifest.files.iter().find(|f| !seen.contains(&f.path)) {
            return Err(UpdateError::Rejected(format!(
                "the bundle lacks {}, which the manifest lists",
                missing.path
            )));
        }
        Ok(())
    }
}

/// Where a payload file's bytes go while it is checked.
trait Sink {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), UpdateError>;
    fn finish(self: Box<Self>) -> Result<(), UpdateError>;
}

impl Sink for std::io::Sink {
    fn write_all(&mut self, _: &[u8]) -> Result<(), UpdateError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), UpdateError> {
        Ok(())
    }
}

/// A file in a slot, synced to disk when finished.
struct SyncedFile {
    file: File,
    path: PathBuf,
}

impl Sink for SyncedFile {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), UpdateError> {
        self.file
            .write_all(bytes)
            .map_err(|e| UpdateError::io(&self.path, e))
    }
    fn finish(self: Box<Self>) -> Result<(), UpdateError> {
        self.file
            .sync_all()
            .map_err(|e| UpdateError::io(&self.path, e))
    }
}

fn bad_tar(path: &Path, e: std::io::Error) -> UpdateError {
    UpdateError::Rejected(format!("{} is not a readable bundle: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minisign public key (the fuzz targets' key, fuzz/keys/fuzz.pub).
    const KEY: &str = "untrusted comment: minisign public key CA876FBE7878B049\n\
                       RWRJsHh4vm+HyueyIvqWURM4cJL3ejJNOFYpyDt9esrIcEXqVsUfAOL+\n";

    #[test]
    fn an_unreadable_key_is_passed_over_and_a_unit_without_a_readable_key_trusts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        // No keys folder at all.
        let error = Keys::load(&keys).err().expect("refused").to_string();
        assert!(error.contains(&*keys.to_string_lossy()), "{error}");
        // A folder whose only key is damaged: nothing is trusted.
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(
            keys.join("damaged.pub"),
            "untrusted comment: x\nnot base64\n",
        )
        .unwrap();
        std::fs::write(keys.join("notes.txt"), KEY).unwrap(); // not a .pub file
        match Keys::load(&keys) {
            Err(UpdateError::NoKeys(dir)) => assert_eq!(dir, keys),
            other => panic!("expected NoKeys, got {:?}", other.map(|k| k.keys.len())),
        }
        // Beside a good key, the damaged one is passed over.
        std::fs::write(keys.join("good.pub"), KEY).unwrap();
        let trusted = Keys::load(&keys).unwrap();
        assert_eq!(trusted.keys.len(), 1);
        assert!(trusted.keys[0].0.ends_with("good.pub"));
    }
}
