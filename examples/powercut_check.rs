//! The host side of `scripts/powercut-test`: judges what a power cut left,
//! from what the guest printed on its console.
//!
//! * `powercut_check exam CONSOLE JOURNAL`: every zone the run cut off in
//!   `CONSOLE` had declared recorded (or cleared) is so in `JOURNAL`, the
//!   exam journal saved after the reboot (see `shared/declared.rs`).
//! * `powercut_check slot CONSOLE BUNDLE...`: the slot the unit starts,
//!   listed after the reboot between `SLOT-FILES-BEGIN` and
//!   `SLOT-FILES-END` as `sha256sum` prints it, is exactly one of the
//!   signed `BUNDLE`s: each of its files and nothing else, byte for byte,
//!   with that bundle's manifest and signature. Anything else is a mix.
//!   Says which (`bundle`: its place among the `BUNDLE`s, from 0).
//!
//! Prints one JSON object and exits 1 when the check fails.

use pleura::update::manifest::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

#[path = "shared/declared.rs"]
mod declared;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ok = match args.get(1).map(String::as_str) {
        Some("exam") if args.len() == 4 => exam(Path::new(&args[2]), Path::new(&args[3])),
        Some("slot") if args.len() >= 4 => slot(Path::new(&args[2]), &args[3..]),
        _ => {
            eprintln!(
                "usage: powercut_check exam CONSOLE JOURNAL | powercut_check slot CONSOLE BUNDLE..."
            );
            std::process::exit(2);
        }
    };
    std::process::exit(i32::from(!ok));
}

fn exam(console: &Path, journal: &Path) -> bool {
    let log = String::from_utf8_lossy(&std::fs::read(console).unwrap_or_default()).into_owned();
    let verdict = declared::verify(&log, journal);
    println!(
        "{}",
        serde_json::json!({
            "declared": verdict.declared,
            "cleared": verdict.cleared,
            "zones_lost": verdict.lost.len(),
            "lost": verdict.lost,
        })
    );
    verdict.lost.is_empty()
}

fn slot(console: &Path, bundles: &[String]) -> bool {
    let log = String::from_utf8_lossy(&std::fs::read(console).unwrap_or_default()).into_owned();
    let listed: BTreeMap<String, String> = log
        .lines()
        .skip_while(|line| !line.contains("SLOT-FILES-BEGIN"))
        .skip(1)
        .take_while(|line| !line.contains("SLOT-FILES-END"))
        .filter_map(|line| {
            let (hash, path) = line.trim().split_once("  ")?;
            Some((path.trim_start_matches("./").to_string(), hash.to_string()))
        })
        .collect();
    let mut matched = None;
    let mut nearest = Vec::new();
    for (index, bundle) in bundles.iter().enumerate() {
        match expected(Path::new(bundle)) {
            Ok((version, files)) if files == listed => matched = Some((index, version)),
            Ok((version, files)) => {
                let differing: Vec<&String> = files
                    .keys()
                    .chain(listed.keys())
                    .filter(|path| files.get(*path) != listed.get(*path))
                    .collect();
                nearest.push(format!("not {version}: {differing:?} differ"));
            }
            Err(e) => nearest.push(format!("{bundle}: {e}")),
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "files": listed.len(),
            "version": matched.as_ref().map(|(_, version)| version),
            "bundle": matched.as_ref().map(|(index, _)| index),
            "otherwise": if matched.is_some() { Vec::new() } else { nearest },
        })
    );
    matched.is_some()
}

/// A bundle's version and the files a slot installed from it holds, with
/// their SHA-256: the payload, the manifest and its signature.
fn expected(bundle: &Path) -> Result<(String, BTreeMap<String, String>), String> {
    let file = std::fs::File::open(bundle).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(file);
    let mut files = BTreeMap::new();
    let mut version = String::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        if path == "manifest.json" {
            let manifest: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            version = manifest["version"].as_str().unwrap_or("?").to_string();
        }
        files.insert(path, hex(&Sha256::digest(&bytes)));
    }
    Ok((version, files))
}
