//! Decompression bombs: a small file that declares a huge picture is
//! refused from its header, before anything is allocated for its pixels
//! (the limit is `pleura::frame::MAX_SIDE`, 4096 a side). The largest heap
//! block a decoder asks for is seen by a global allocator that watches
//! only the test's thread.

mod common;

use pleura::source::pixels::{FrameLayout, PixelFormat, to_gray};
use pleura::source::{DirSource, FrameSource, SourceError, decode_clip};
use std::io::{Cursor, Write};
use std::path::Path;

#[path = "common/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// More than any decoder needs for a refused header, far less than the
/// picture it declares.
const SMALL: usize = 4 << 20;

/// CRC-32 of PNG chunks (ISO 3309), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 16×16 gray PNG whose header (IHDR) is patched to declare
/// `width`×`height`, its CRC fixed: a few hundred bytes.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    image::GrayImage::new(16, 16)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Signature (8), IHDR length (4) and type (4), then width and height.
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A real decompression bomb: a `side`×`side` gray PNG of zeros, written
/// row by row (a 20000 px side makes about 400 KB of file and 400 MB of
/// pixels).
fn write_png_bomb(path: &Path, side: u32) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut rows = encoder
        .write_header()
        .unwrap()
        .into_stream_writer()
        .unwrap();
    let row = vec![0u8; side as usize];
    for _ in 0..side {
        rows.write_all(&row).unwrap();
    }
    rows.finish().unwrap();
}

/// Good frames from a demo clip, saved as `NNNN.png` from `first` on.
fn save_demo_frames(dir: &Path, first: usize, count: usize) {
    let clip = common::repo("tests/demo/covid-score2.mp4");
    for (i, frame) in decode_clip(&clip, Some(count)).unwrap().iter().enumerate() {
        image::GrayImage::from_raw(
            frame.width as u32,
            frame.height as u32,
            frame.pixels.clone(),
        )
        .unwrap()
        .save(dir.join(format!("{:04}.png", first + i)))
        .unwrap();
    }
}

/// A 64×48 gray JPEG whose frame header (SOF0) is patched to declare
/// `width`×`height`.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(&[128; 64 * 48], 64, 48, image::ExtendedColorType::L8)
        .unwrap();
    let sof = jpeg
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("a baseline frame header");
    // Marker (2), length (2), precision (1), then height and width.
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

#[test]
fn an_image_that_declares_a_huge_picture_is_a_bad_frame_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0000.png"), png_declaring(20000, 20000)).unwrap();
    std::fs::write(dir.path().join("0001.png"), png_declaring(4097, 16)).unwrap();
    save_demo_frames(dir.path(), 2, 1);
    let mut source = DirSource::open(dir.path()).unwrap();
    for (name, size) in [("0000.png", "20000x20000"), ("0001.png", "4097x16")] {
        let mut result = None;
        let largest = alloc::largest_on_this_thread(|| result = Some(source.next_frame()));
        assert!(largest < SMALL, "{name}: a block of {largest} bytes");
        match result.unwrap() {
            Err(e @ SourceError::BadFrame { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(name) && message.contains(size) && message.contains("4096"),
                    "{message}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let frame = source
        .next_frame()
        .unwrap()
        .expect("the good frame after them");
    assert_eq!((frame.width, frame.seq), (240, 2));
}

#[test]
fn a_grabber_jpeg_that_declares_another_size_is_refused_before_decoding() {
    let layout = FrameLayout {
        format: PixelFormat::Mjpeg,
        width: 64,
        height: 48,
        stride: 0,
    };
    let mut gray = Vec::new();
    let good = jpeg_declaring(64, 48);
    to_gray(&good, layout, &mut gray).unwrap();
    assert_eq!(gray.len(), 64 * 48);
    // Over the limit, and within it but not the negotiated size: both are
    // refused from the header, without a buffer for the declared picture.
    for (w, h, expected) in [
        (20000, 20000, "20000x20000 pixels, more than the 4096x4096"),
        (4000, 3000, "4000x3000, 64x48 expected"),
    ] {
        let jpeg = jpeg_declaring(w, h);
        let mut result = None;
        let largest =
            alloc::largest_on_this_thread(|| result = Some(to_gray(&jpeg, layout, &mut gray)));
        assert!(largest < SMALL, "{w}x{h}: a block of {largest} bytes");
        let err = result.unwrap().unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

/// The most memory any child of this test process has held, in bytes.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn a_folder_with_a_decompression_bomb_loses_that_frame_and_not_the_memory() {
    let dir = tempfile::tempdir().unwrap();
    // First in the folder: a frame of another size after the first is
    // skipped by the pipeline, but only once it has been decoded.
    let bomb = dir.path().join("0000-bomb.png");
    write_png_bomb(&bomb, 20000);
    assert!(
        std::fs::metadata(&bomb).unwrap().len() < 2 << 20,
        "a small file"
    );
    save_demo_frames(dir.path(), 1, 4);
    let report = dir.path().join("r.json");
    let output = common::pleura()
        .arg("run")
        .arg(format!("--source=dir:{}", dir.path().display()))
        .args(["--display", "none", "--no-pace", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak = children_peak_rss();
    // 3.4 GB before the header was checked; under 100 MB since (more
    // under an emulator).
    assert!(peak < 1 << 30, "pleura held {} MB", peak >> 20);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("0000-bomb.png") && stderr.contains("20000x20000"),
        "the bomb is named with its size: {stderr}"
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["frames"]["corrupt"], 1, "{r}");
    assert_eq!(r["frames"]["scored"], 4, "{r}");
}
