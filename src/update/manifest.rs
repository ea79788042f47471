//! The manifest: what a bundle holds and where it may be installed.
//!
//! The manifest is the only signed part of a bundle. Everything else is
//! trusted through it: each payload file is named here with its size and
//! SHA-256, so a file that is not listed, or differs by one byte, is refused.

use super::UpdateError;
use crate::board::BoardProfile;
use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Component, Path};

/// The product every bundle must name.
pub const PRODUCT: &str = "pleura";
/// The manifest's name inside a bundle and inside a slot.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's minisign signature, beside it.
pub const SIGNATURE: &str = "manifest.json.minisig";
/// The largest manifest read (a bigger one is refused before parsing).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// A signed description of one firmware version for some boards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`PRODUCT`].
    pub product: String,
    /// This version (semantic versioning).
    pub version: Version,
    /// The oldest installed version this bundle may update.
    pub min_installed: Version,
    /// Board profile names this build runs on.
    pub boards: Vec<String>,
    /// The payload, in bundle order.
    pub files: Vec<FileEntry>,
}

/// One payload file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path inside the slot, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Whether the file is a program (mode 0755, else 0644).
    #[serde(default)]
    pub executable: bool,
}

impl Manifest {
    /// Parses a manifest and checks every path in it (see [`check_path`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, UpdateError> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| UpdateError::Rejected(format!("the manifest is not valid: {e}")))?;
        if manifest.product != PRODUCT {
            return Err(UpdateError::Rejected(format!(
                "the bundle is for '{}', not {PRODUCT}",
                manifest.product
            )));
        }
        let mut seen = BTreeSet::new();
        for file in &manifest.files {
            check_path(&file.path)?;
            if !seen.insert(file.path.as_str()) {
                return Err(UpdateError::Rejected(format!(
                    "the manifest lists {} twice",
                    file.path
                )));
            }
            let hex = file.sha256.len() == 64 && file.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex {
                return Err(UpdateError::Rejected(format!(
                    "the manifest's hash of {} is not SHA-256 hex",
                    file.path
                )));
            }
        }
        Ok(manifest)
    }

    /// The entry for `path`, if listed.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Describes every regular file under `dir` (the host side of
    /// `scripts/make-update`) for `boards`. Files with any execute bit are
    /// executable. Every ELF file (a program or library) must be built for
    /// each board's processor (its profile's `target`); a mismatch, e.g. an
    /// x86-64 `bin/pleura` in a bundle for an aarch64 board, is refused.
    pub fn describe(
        dir: &Path,
        version: Version,
        min_installed: Version,
        boards: &[BoardProfile],
    ) -> Result<Self, UpdateError> {
        let machines = boards
            .iter()
            .map(|board| {
                target_machine(&board.target)
                    .map(|machine| (board, machine))
                    .ok_or_else(|| UpdateError::UnknownTarget {
                        board: board.name.clone(),
                        target: board.target.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).map_err(|e| UpdateError::io(&folder, e))? {
                let path = entry.map_err(|e| UpdateError::io(&folder, e))?.path();
                let meta =
                    std::fs::symlink_metadata(&path).map_err(|e| UpdateError::io(&path, e))?;
                if meta.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(dir)
                    .map_err(|_| UpdateError::Rejected(format!("{} is outside", path.display())))?
                    .to_string_lossy()
                    .replace('\\', "/");
                if !meta.is_file() {
                    return Err(UpdateError::Rejected(format!(
                        "{relative} is not a regular file (symlinks are not shipped)"
                    )));
                }
                if relative == MANIFEST || relative == SIGNATURE {
                    continue;
                }
                check_path(&relative)?;
                let bytes = std::fs::read(&path).map_err(|e| UpdateError::io(&path, e))?;
                if let Some(found) = elf_machine(&bytes) {
                    for (board, expected) in &machines {
                        if found != *expected {
                            return Err(UpdateError::WrongMachine {
                                file: relative,
                                found: machine_name(found),
                                board: board.name.clone(),
                                target: board.target.clone(),
                                expected: machine_name(*expected),
                            });
                        }
                    }
                }
                use std::os::unix::fs::PermissionsExt;
                files.push(FileEntry {
                    path: relative,
                    size: meta.len(),
                    sha256: hex(&Sha256::digest(&bytes)),
                    executable: meta.permissions().mode() & 0o111 != 0,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Manifest {
            product: PRODUCT.into(),
            version,
            min_installed,
            boards: boards.iter().map(|b| b.name.clone()).collect(),
            files,
        })
    }
}

/// Refuses a payload path that could land outside its slot or clash with
/// the slot's own files: it must be relative, made of plain names only (no
/// `..`, `.`, or empty parts), and not be the manifest or its signature.
pub fn check_path(path: &str) -> Result<(), UpdateError> {
    let refuse = |why: &str| {
        Err(UpdateError::Rejected(format!(
            "unsafe path '{path}': {why}"
        )))
    };
    if path.is_empty() {
        return refuse("empty");
    }
    if path.starts_with('/') {
        return refuse("absolute");
    }
    if path.contains('\\') || path.contains('\0') || path.ends_with('/') {
        return refuse("not a plain relative file name");
    }
    for part in Path::new(path).components() {
        match part {
            Component::Normal(_) => {}
            Component::ParentDir => return refuse("'..' leaves the slot"),
            _ => return refuse("not a plain relative file name"),
        }
    }
    if path.split('/').any(|p| p.is_empty() || p == ".") {
        return refuse("not a plain relative file name");
    }
    if path == MANIFEST || path == SIGNATURE {
        return refuse("the manifest is not payload");
    }
    Ok(())
}

/// ELF machine numbers (`e_machine`) Pleura's boards use.
const EM_386: u16 = 0x03;
/// 32-bit ARM.
const EM_ARM: u16 = 0x28;
/// x86-64.
const EM_X86_64: u16 = 0x3E;
/// 64-bit ARM.
const EM_AARCH64: u16 = 0xB7;
/// RISC-V.
const EM_RISCV: u16 = 0xF3;

/// The ELF machine (`e_machine`) of programs built for a Rust target
/// triple, from its architecture (the part before the first `-`); `None`
/// for an architecture Pleura does not know.
pub fn target_machine(target: &str) -> Option<u16> {
    let arch = target.split('-').next().unwrap_or_default();
    Some(match arch {
        "x86_64" => EM_X86_64,
        "aarch64" | "aarch64_be" | "arm64" => EM_AARCH64,
        "i386" | "i586" | "i686" => EM_386,
        arch if arch.starts_with("arm") || arch.starts_with("thumb") => EM_ARM,
        arch if arch.starts_with("riscv") => EM_RISCV,
        _ => return None,
    })
}

/// The ELF machine of a file from its first bytes, or `None` when it is
/// not an ELF file (a script, a model, a profile). `e_machine` is the
/// 16-bit field at offset 18, in the byte order the header's `EI_DATA`
/// (offset 5) gives: 1 little-endian, 2 big-endian.
pub fn elf_machine(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 20 || !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    let field = [bytes[18], bytes[19]];
    Some(match bytes[5] {
        2 => u16::from_be_bytes(field),
        _ => u16::from_le_bytes(field),
    })
}

/// An ELF machine's name, for messages.
pub fn machine_name(machine: u16) -> String {
    match machine {
        EM_X86_64 => "x86-64".into(),
        EM_AARCH64 => "aarch64 (64-bit ARM)".into(),
        EM_ARM => "32-bit ARM".into(),
        EM_386 => "x86 (32-bit)".into(),
        EM_RISCV => "RISC-V".into(),
        other => format!("ELF machine {other:#06x}"),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_payload() {
        for good in ["bin/pleura", "models/lusnet-v3.gguf", "a"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "bin/../../x",
            "./bin/pleura",
            "bin//pleura",
            "bin/",
            "bin\\pleura",
            MANIFEST,
            SIGNATURE,
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    /// The first 20 bytes of an ELF file for `machine`, little-endian.
    fn elf_header(machine: u16) -> Vec<u8> {
        let mut header = b"\x7fELF\x02\x01\x01".to_vec();
        header.resize(18, 0);
        header.extend(machine.to_le_bytes());
        header
    }

    #[test]
    fn elf_machines_are_read_from_the_header_and_targets_map_to_them() {
        assert_eq!(elf_machine(&elf_header(0xB7)), Some(EM_AARCH64));
        assert_eq!(elf_machine(&elf_header(0x3E)), Some(EM_X86_64));
        let mut big_endian = elf_header(0);
        big_endian[5] = 2;
        big_endian[18..20].copy_from_slice(&EM_ARM.to_be_bytes());
        assert_eq!(elf_machine(&big_endian), Some(EM_ARM));
        assert_eq!(elf_machine(b"#!/usr/bin/env bash\necho hello\n"), None);
        assert_eq!(elf_machine(&elf_header(0xB7)[..19]), None, "too short");
        assert_eq!(elf_machine(b"\x7fELF"), None);

        assert_eq!(
            target_machine("aarch64-unknown-linux-gnu"),
            Some(EM_AARCH64)
        );
        assert_eq!(target_machine("x86_64-unknown-linux-gnu"), Some(EM_X86_64));
        assert_eq!(
            target_machine("armv7-unknown-linux-gnueabihf"),
            Some(EM_ARM)
        );
        assert_eq!(target_machine("arm-unknown-linux-gnueabihf"), Some(EM_ARM));
        assert_eq!(
            target_machine("riscv64gc-unknown-linux-gnu"),
            Some(EM_RISCV)
        );
        assert_eq!(target_machine("mips-unknown-linux-gnu"), None);
        let here = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(
            elf_machine(&me),
            target_machine(&here),
            "this test's own binary"
        );
    }

    #[test]
    fn a_manifest_with_a_path_listed_twice_or_a_bad_hash_is_refused() {
        let file = |path: &str, sha256: &str| FileEntry {
            path: path.into(),
            size: 1,
            sha256: sha256.into(),
            executable: false,
        };
        let mut manifest = Manifest {
            product: PRODUCT.into(),
            version: Version::new(1, 0, 0),
            min_installed: Version::new(0, 1, 0),
            boards: vec!["rpi4".into()],
            files: vec![file("a", &"0".repeat(64))],
        };
        let parse = |m: &Manifest| Manifest::parse(&serde_json::to_vec(m).unwrap());
        assert_eq!(parse(&manifest).unwrap(), manifest);
        manifest.files.push(file("a", &"0".repeat(64)));
        assert!(parse(&manifest).unwrap_err().to_string().contains("twice"));
        manifest.files[1] = file("b", "xyz");
        assert!(
            parse(&manifest)
                .unwrap_err()
                .to_string()
                .contains("SHA-256")
        );
        manifest.files.pop();
        manifest.product = "other".into();
        assert!(parse(&manifest).unwrap_err().to_string().contains("other"));
    }
}
