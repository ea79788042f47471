//! The GGUF model loader: any bytes as a model file are a model or a named
//! error, with memory bounded by the file's size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let reader = std::io::Cursor::new(data);
    let _ = pleura::model::ModelFile::read_from(std::path::Path::new("fuzz.gguf"), reader);
});
