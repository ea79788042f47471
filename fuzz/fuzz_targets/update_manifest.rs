//! The update bundle's manifest, as it is parsed before anything is
//! installed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pleura::update::manifest::Manifest::parse(data);
});
