//! Writing a file so that no reader ever sees half of one: the content goes
//! to `NAME.partial` beside the destination and is then renamed over it.
//! Model files, run reports and displayed frames are all written this way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Whether the content must reach the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` before the rename: the file survives a power loss whole.
    Synced,
    /// No `fsync`: cheaper, for files that are redrawn anyway.
    Unsynced,
}

/// Writes `path` through `write`, atomically: a crash leaves either the
/// old file or the whole new one (and maybe a stray `.partial`).
pub fn write_atomically(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let mut out = BufWriter::new(File::create(&partial)?);
    write(&mut out)?;
    out.flush()?;
    if durability == Durability::Synced {
        out.get_ref().sync_all()?;
    }
    std::fs::rename(&partial, path)
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
    fn a_failed_write_leaves_the_old_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        std::fs::write(&path, b"old").unwrap();
        let failed = write_atomically(&path, Durability::Unsynced, |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
