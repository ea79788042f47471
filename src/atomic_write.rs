//! Writing a file so that no reader ever sees half of one: the content goes
//! to `NAME.partial` beside the destination and is then renamed over it.
//! Model files, run reports and displayed frames are all written this way.
//! A write that fails (a full disk, an I/O error) removes its `.partial`,
//! so that failures leave nothing behind; only a crash can leave one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Whether the content must reach the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` before the rename: the file survives a power loss whole.
    Synced,
    /// No `fsync`: cheaper, for files that are redrawn anyway.
    Unsynced,
}

/// Writes `path` through `write`, atomically: a crash leaves either the
/// old file or the whole new one (and maybe a stray `.partial`). A failed
/// write leaves the old file and removes its `.partial`.
pub fn write_atomically(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut out = BufWriter::new(File::create(&partial)?);
    let written = write(&mut out)
        .and_then(|()| out.flush())
        .and_then(|()| match durability {
            Durability::Synced => out.get_ref().sync_all(),
            Durability::Unsynced => Ok(()),
        });
    // Dropping the writer flushes again; a write that failed must not get
    // a second try at a full disk before its file is removed.
    let (file, _) = out.into_parts();
    drop(file);
    let result = written.and_then(|()| std::fs::rename(&partial, path));
    if result.is_err()
        && let Err(e) = std::fs::remove_file(&partial)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", partial.display());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_content_replaces_the_old_and_no_partial_file_remains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, Durability::Synced, |out| out.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_untouched_and_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        std::fs::write(&path, b"old").unwrap();
        let failed = write_atomically(&path, Durability::Unsynced, |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(
            !dir.path().join("model.gguf.partial").exists(),
            "a failed write removes its partial file"
        );
    }
}
