//! The framebuffer backend against a file standing in for `/dev/fb0`: rows
//! padded past the visible width, RGB565 and XRGB8888, and every mounting
//! rotation. The expected bytes are computed here independently of the
//! backend, pixel by pixel.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use pleura::display::{Canvas, FbGeometry, PixelFormat, Rotation};

#[path = "common/display.rs"]
#[allow(dead_code)]
mod fixtures;

/// A picture where every pixel differs: red = x, green = y, blue = a
/// marker rectangle in the top-left corner.
fn test_picture(w: u32, h: u32) -> Canvas {
    let mut canvas = Canvas::new(w, h);
    for y in 0..h {
        for x in 0..w {
            canvas
                .0
                .put_pixel(x, y, image::Rgb([(x * 3) as u8, (y * 5) as u8, 40]));
        }
    }
    Rectangle::new(Point::new(0, 0), Size::new(4, 2))
        .into_styled(PrimitiveStyle::with_fill(Rgb888::new(255, 255, 255)))
        .draw(&mut canvas)
        .expect("draw");
    canvas
}

fn encode(format: PixelFormat, [r, g, b]: [u8; 3]) -> Vec<u8> {
    match format {
        PixelFormat::Rgb565 => {
            let v = ((r as u16 >> 3) << 11) | ((g as u16 >> 2) << 5) | (b as u16 >> 3);
            v.to_le_bytes().to_vec()
        }
        PixelFormat::Xrgb8888 => vec![b, g, r, 0],
    }
}

/// Where logical pixel (x, y) of an upright w×h picture lands on the panel.
fn physical(rotation: Rotation, (x, y): (u32, u32), (w, h): (u32, u32)) -> (u32, u32) {
    match rotation {
        Rotation::R0 => (x, y),
        // Turned a quarter clockwise: the picture's top row runs down the
        // panel's right-most column.
        Rotation::R90 => (h - 1 - y, x),
        Rotation::R180 => (w - 1 - x, h - 1 - y),
        Rotation::R270 => (y, w - 1 - x),
    }
}

fn check(format: PixelFormat, rotation: Rotation) {
    let (pw, ph) = (40u32, 24u32);
    let padding = 24; // bytes past the visible row, as many drivers have
    let line_length = pw as usize * format.bytes() + padding;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fb0");
    let geometry = FbGeometry {
        width: pw,
        height: ph,
        line_length,
        format,
    };
    let mut fb = fixtures::fake_framebuffer(&path, geometry, rotation);
    let size = fb.logical_size();
    let picture = test_picture(size.width, size.height);
    fb.present(&picture).expect("present");

    let bytes = std::fs::read(&path).expect("read fake fb");
    assert_eq!(
        bytes.len(),
        line_length * ph as usize,
        "{format:?} {rotation:?}: file size"
    );
    for y in 0..size.height {
        for x in 0..size.width {
            let (px, py) = physical(rotation, (x, y), (size.width, size.height));
            let at = py as usize * line_length + px as usize * format.bytes();
            let want = encode(format, picture.0.get_pixel(x, y).0);
            assert_eq!(
                &bytes[at..at + format.bytes()],
                &want[..],
                "{format:?} {rotation:?}: logical ({x},{y}) at physical ({px},{py})"
            );
        }
    }
    for row in 0..ph as usize {
        let pad = &bytes[row * line_length + pw as usize * format.bytes()..(row + 1) * line_length];
        assert!(
            pad.iter().all(|&b| b == 0),
            "{format:?} {rotation:?}: padding of row {row} written"
        );
    }
}

#[test]
fn rgb565_with_padded_rows_lands_pixel_for_pixel() {
    check(PixelFormat::Rgb565, Rotation::R0);
}

#[test]
fn xrgb8888_with_padded_rows_lands_pixel_for_pixel() {
    check(PixelFormat::Xrgb8888, Rotation::R0);
}

#[test]
fn every_rotation_turns_the_picture_upright() {
    for rotation in [Rotation::R90, Rotation::R180, Rotation::R270] {
        check(PixelFormat::Rgb565, rotation);
        check(PixelFormat::Xrgb8888, rotation);
    }
}

#[test]
fn a_picture_of_the_wrong_size_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fb0");
    let geometry = FbGeometry {
        width: 40,
        height: 24,
        line_length: 80,
        format: PixelFormat::Rgb565,
    };
    let mut fb = fixtures::fake_framebuffer(&path, geometry, Rotation::R90);
    assert_eq!(fb.logical_size(), Size::new(24, 40));
    let err = fb
        .present(&Canvas::new(40, 24))
        .expect_err("wrong size")
        .to_string();
    assert!(err.contains("40x24") && err.contains("fb0"), "{err}");
}
