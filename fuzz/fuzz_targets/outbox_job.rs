//! Outbox job files: a damaged job is named and left, the others read.
#![no_main]

#[path = "scratch.rs"]
#[allow(dead_code)]
mod scratch;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = scratch::dir().join("outbox");
    std::fs::create_dir_all(&dir).expect("outbox folder");
    std::fs::write(dir.join("job.json"), data).expect("job file");
    let outbox = pleura::hospital::outbox::Outbox::new(&dir);
    let _ = outbox.jobs();
    let _ = outbox.counts();
});
