//! Sector detection on frames as a grabber delivers them: the ultrasound
//! image inside the machine's user interface, with black borders, static
//! text, a depth scale and a logo around it.

mod common;

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_9X15_BOLD};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::Text;
use pleura::display::Canvas;
use pleura::frame::GrayFrame;
use pleura::preprocess::{Roi, SectorMode, SectorTracker, Tracked, detect_sector};
use pleura::source::decode_clip;

/// Width and height of the grabber frame.
const SCREEN: (usize, usize) = (480, 360);
/// Where the clip is pasted.
const OFFSET: (usize, usize) = (150, 70);

/// The static machine UI: a background level, text, a depth scale and a logo.
fn machine_ui(background: u8) -> Vec<u8> {
    let mut canvas = Canvas::new(SCREEN.0 as u32, SCREEN.1 as u32);
    let bg = Rgb888::new(background, background, background);
    let white = Rgb888::new(240, 240, 240);
    let _ = canvas.clear(bg);
    let big = MonoTextStyle::new(&FONT_9X15_BOLD, white);
    let small = MonoTextStyle::new(&FONT_6X10, white);
    let _ = Text::new("ACME SONO 3000   LUNG  C5-2", Point::new(8, 18), big).draw(&mut canvas);
    let _ = Text::new(
        "MI 0.7  TIs 0.1  Gain 52  DR 60  12 cm",
        Point::new(8, 36),
        small,
    )
    .draw(&mut canvas);
    for (i, line) in ["Patient: ----", "Zone R2", "Frq 3.5 MHz", "FPS 25"]
        .iter()
        .enumerate()
    {
        let _ = Text::new(line, Point::new(8, 80 + 14 * i as i32), small).draw(&mut canvas);
    }
    for depth in 0..12 {
        let y = (OFFSET.1 + depth * 20) as i32;
        let _ = Rectangle::new(Point::new(400, y), Size::new(10, 2))
            .into_styled(PrimitiveStyle::with_fill(white))
            .draw(&mut canvas);
        let _ = Text::new(&depth.to_string(), Point::new(414, y + 4), small).draw(&mut canvas);
    }
    let _ = Rectangle::new(Point::new(420, 320), Size::new(48, 28))
        .into_styled(PrimitiveStyle::with_fill(Rgb888::new(200, 200, 200)))
        .draw(&mut canvas);
    canvas.0.pixels().map(|p| p.0[1]).collect()
}

/// The clip's frames pasted into the UI at `OFFSET`.
fn grabbed(clip: &[GrayFrame], background: u8) -> Vec<GrayFrame> {
    let ui = machine_ui(background);
    clip.iter()
        .map(|f| {
            let mut pixels = ui.clone();
            for y in 0..f.height {
                let row = &f.pixels[y * f.width..][..f.width];
                pixels[(OFFSET.1 + y) * SCREEN.0 + OFFSET.0..][..f.width].copy_from_slice(row);
            }
            GrayFrame::new(SCREEN.0, SCREEN.1, pixels, f.seq).unwrap()
        })
        .collect()
}

fn close(found: Roi, expected: Roi) -> bool {
    let near = |a: usize, b: usize| a.abs_diff(b) <= 3;
    near(found.x, expected.x)
        && near(found.y, expected.y)
        && near(found.w, expected.w)
        && near(found.h, expected.h)
}

/// The sector the live tracker locks on the clip.
fn live_sector(frames: Vec<GrayFrame>) -> Roi {
    let mut tracker = SectorTracker::new(SectorMode::Auto);
    let mut ready = Vec::new();
    for frame in frames {
        tracker.push(frame, &mut ready).unwrap();
    }
    tracker.finish(&mut ready);
    let locked = ready.iter().find_map(|t| match t {
        Tracked::Locked(roi) => Some(*roi),
        Tracked::Frame { .. } => None,
    });
    locked.flatten().expect("a sector")
}

#[test]
fn the_sector_is_found_inside_a_machine_ui_with_text_scale_and_logo() {
    for name in [
        "healthy-score0.mp4",
        "covid-score2.mp4",
        "viral-linear-score2.mp4",
    ] {
        let clip = decode_clip(&common::repo(&format!("tests/demo/{name}")), None).unwrap();
        let shifted = |roi: Roi| Roi {
            x: roi.x + OFFSET.0,
            y: roi.y + OFFSET.1,
            ..roi
        };
        let expected = shifted(detect_sector(&clip).unwrap());
        let expected_live = shifted(live_sector(clip.clone()));
        for background in [0, 40] {
            let frames = grabbed(&clip, background);
            let offline = detect_sector(&frames).unwrap();
            assert!(
                close(offline, expected),
                "{name} on {background}: {offline:?} vs {expected:?}"
            );
            let live = live_sector(frames);
            assert!(
                close(live, expected_live),
                "{name} on {background}: live {live:?} vs {expected_live:?}"
            );
        }
    }
}

#[test]
fn black_borders_around_a_clip_are_cropped_away() {
    let clip = decode_clip(&common::repo("tests/demo/covid-score1.mp4"), None).unwrap();
    let alone = detect_sector(&clip).unwrap();
    let framed: Vec<GrayFrame> = clip
        .iter()
        .map(|f| {
            let (w, h) = (f.width + 80, f.height + 40);
            let mut pixels = vec![0u8; w * h];
            for y in 0..f.height {
                pixels[(y + 20) * w + 40..][..f.width]
                    .copy_from_slice(&f.pixels[y * f.width..][..f.width]);
            }
            GrayFrame::new(w, h, pixels, f.seq).unwrap()
        })
        .collect();
    let found = detect_sector(&framed).unwrap();
    let expected = Roi {
        x: alone.x + 40,
        y: alone.y + 20,
        ..alone
    };
    assert!(close(found, expected), "{found:?} vs {expected:?}");
}
