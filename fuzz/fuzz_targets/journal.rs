//! Exam journal replay: any bytes as a journal are an exam or a named
//! error, never a panic or an unbounded allocation.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch::file("exam.jsonl", data);
    let _ = pleura::exam::Journal::read(&path);
});
