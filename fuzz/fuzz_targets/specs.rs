//! The command line's and the profiles' text formats: `--source`,
//! `--display`, grabber options, DICOM and HL7 peers, sizes, AE titles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = text.parse::<pleura::source::SourceSpec>();
    let _ = text.parse::<pleura::display::DisplaySpec>();
    let _ = pleura::source::V4lOptions::parse(text);
    let _ = text.parse::<pleura::spec::AeAddress>();
    let _ = text.parse::<pleura::spec::HostPort>();
    let _ = text.parse::<pleura::hospital::outbox::Destination>();
    let _ = pleura::spec::size(text);
    let _ = pleura::spec::ae_title(text);
});
