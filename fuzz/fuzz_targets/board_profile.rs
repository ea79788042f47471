//! Board profiles: any bytes as `boards/NAME.toml`.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch::file("fuzz.toml", data);
    let _ = pleura::board::BoardProfile::load(&path);
});
