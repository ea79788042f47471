//! Hospital clips: any bytes as a DICOM file (after a valid preamble and
//! `DICM`, so that the parser, not the magic check, is what is fuzzed).
#![no_main]

use pleura::source::FrameSource;

#[path = "scratch.rs"]
mod scratch;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    file.extend_from_slice(data);
    let path = scratch::file("clip.dcm", &file);
    if let Ok(mut clip) = pleura::source::DicomSource::open(&path) {
        // At most a few frames: the reader's checks are what is fuzzed.
        for _ in 0..4 {
            match clip.next_frame() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
});
