//! The zones' saved clips, as `pleura send` reads them back.
#![no_main]

#[path = "scratch.rs"]
#[allow(dead_code)]
mod scratch;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let journal = scratch::dir().join("exam.jsonl");
    let clips = pleura::exam::ZoneClips::beside(&journal);
    let path = clips.path("2.25.1", 0);
    std::fs::create_dir_all(path.parent().expect("clip folder")).expect("clip folder");
    std::fs::write(&path, data).expect("clip file");
    let _ = clips.load("2.25.1", 0);
});
