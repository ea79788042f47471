//! A scratch folder per fuzzing process, in memory when /dev/shm exists:
//! the file-reading parsers get each input as a file there.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The process's scratch folder.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("pleura-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// Writes `data` as the file `name` in the scratch folder.
pub fn file(name: &str, data: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}
