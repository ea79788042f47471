//! Frame conversion for every pixel format a grabber may answer, MJPEG with
//! and without Huffman tables: the first bytes choose the format, size and
//! stride, the rest is the frame.
#![no_main]

use pleura::source::pixels::{FrameLayout, PixelFormat, to_gray};

const FORMATS: [PixelFormat; 5] = [
    PixelFormat::Grey,
    PixelFormat::Yuyv,
    PixelFormat::Mjpeg,
    PixelFormat::Nv12,
    PixelFormat::Rgb24,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, frame)) = data.split_at_checked(7) else {
        return;
    };
    let format = FORMATS[usize::from(head[0]) % FORMATS.len()];
    let width = u32::from(u16::from_le_bytes([head[1], head[2]])) % 600;
    let height = u32::from(u16::from_le_bytes([head[3], head[4]])) % 600;
    let stride = u32::from(u16::from_le_bytes([head[5], head[6]]));
    let Ok(layout) = FrameLayout::negotiated(format, width, height, stride) else {
        return;
    };
    let mut gray = Vec::new();
    let _ = to_gray(frame, layout, &mut gray);
});
