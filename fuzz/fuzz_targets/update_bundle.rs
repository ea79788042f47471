//! Update bundles: the tar walk to the manifest and its signature, the
//! signature check against a trusted key, and the payload's unpacking into
//! a slot. The fuzzer cannot sign, so the payload walk is also run with the
//! bundle's own manifest taken as if its signature had verified: what a
//! signed but hostile (or damaged after signing) bundle would reach.
#![no_main]

use pleura::update::bundle::{Keys, SignedBundle};
use pleura::update::manifest::{MANIFEST, MAX_MANIFEST_BYTES, Manifest};
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

#[path = "scratch.rs"]
mod scratch;

/// The fuzz key (fuzz/keys/fuzz.pub), the one that signed the seed.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = scratch::dir().join("keys");
        std::fs::create_dir_all(&dir).expect("keys folder");
        std::fs::write(dir.join("fuzz.pub"), include_str!("../keys/fuzz.pub")).expect("key");
        Keys::load(&dir).expect("the fuzz key loads")
    })
}

/// The bundle's first entry, when it is the manifest and parses.
fn unverified(path: &Path) -> Option<SignedBundle> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).ok()?);
    let entry = archive.entries().ok()?.next()?.ok()?;
    if entry.path_bytes().as_ref() != MANIFEST.as_bytes() {
        return None;
    }
    let mut manifest_bytes = Vec::new();
    entry
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut manifest_bytes)
        .ok()?;
    let manifest = Manifest::parse(&manifest_bytes).ok()?;
    Some(SignedBundle {
        path: path.to_path_buf(),
        manifest,
        manifest_bytes,
        signature: String::new(),
    })
}

/// Checks the payload, then unpacks it whatever the check said: the
/// unpacking checks again as it writes, and that is fuzzed too.
fn install(bundle: &SignedBundle) {
    let slot = scratch::dir().join("slot");
    let _ = bundle.check_payload();
    let _ = bundle.unpack(&slot, |_| Ok(()));
    let _ = std::fs::remove_dir_all(&slot);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch::file("bundle.tar", data);
    if let Ok(bundle) = SignedBundle::open(&path, keys()) {
        install(&bundle);
    } else if let Some(bundle) = unverified(&path) {
        install(&bundle);
    }
});
