//! The annotated frame: the ultrasound image with the segmentation laid
//! over its sector, and a bar below with the scores and a legend.
//!
//! ```text
//! ┌──────────────────────────────┐
//! │  frame, sector outlined,     │
//! │  B-lines / consolidations    │
//! │  tinted                      │
//! ├──────────────────────────────┤
//! │ CLIP 2  0.67 STABLE  live 2  │
//! │ clip.mp4 #41   ■ b_line ■ …  │
//! └──────────────────────────────┘
//! ```

use crate::scoring::ScoredFrame;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_9X15_BOLD};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use image::RgbImage;

/// Narrowest and widest picture of the frame, in pixels.
const MIN_WIDTH: usize = 360;
const MAX_WIDTH: usize = 720;
/// Height of the score bar.
const BAR_HEIGHT: u32 = 40;
/// Opacity of the segmentation tint.
const TINT_ALPHA: f32 = 0.45;

/// An RGB image that `embedded-graphics` can draw on.
pub struct Canvas(pub RgbImage);

impl Canvas {
    /// A black canvas.
    pub fn new(width: u32, height: u32) -> Self {
        Self(RgbImage::new(width, height))
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = (self.0.width() as i32, self.0.height() as i32);
        for Pixel(p, c) in pixels {
            if (0..w).contains(&p.x) && (0..h).contains(&p.y) {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// The colour of a Soldati score: green, yellow, orange, red.
pub fn score_colour(score: u8) -> Rgb888 {
    match score {
        0 => Rgb888::new(60, 200, 90),
        1 => Rgb888::new(235, 205, 30),
        2 => Rgb888::new(245, 130, 20),
        _ => Rgb888::new(230, 45, 45),
    }
}

/// The tint of a segmentation class (class 0, background, is never drawn).
pub fn class_colour(class: usize) -> Rgb888 {
    match class {
        1 => Rgb888::new(0, 200, 255),
        2 => Rgb888::new(255, 60, 200),
        _ => Rgb888::new(160, 255, 80),
    }
}

/// Draws `scored` as an annotated picture. `classes` names the
/// segmentation classes, background first.
pub fn annotate(scored: &ScoredFrame, classes: &[String]) -> Canvas {
    let frame = &scored.frame;
    let width = frame.width.clamp(MIN_WIDTH, MAX_WIDTH);
    let height = (frame.height * width).div_ceil(frame.width);
    let mut canvas = Canvas::new(width as u32, height as u32 + BAR_HEIGHT);
    let seg = &scored.prediction;
    let sector = scored.sector;
    for y in 0..height {
        let sy = y * frame.height / height;
        for x in 0..width {
            let sx = x * frame.width / width;
            let v = frame.pixels[sy * frame.width + sx];
            let mut rgb = [v; 3].map(f32::from);
            let in_sector = (sector.x..sector.x + sector.w).contains(&sx)
                && (sector.y..sector.y + sector.h).contains(&sy);
            if in_sector && seg.seg_size > 0 {
                let cx = (sx - sector.x) * seg.seg_size / sector.w;
                let cy = (sy - sector.y) * seg.seg_size / sector.h;
                let class = usize::from(seg.seg_labels[cy * seg.seg_size + cx]);
                if class > 0 {
                    let tint = class_colour(class);
                    for (channel, t) in rgb.iter_mut().zip([tint.r(), tint.g(), tint.b()]) {
                        *channel += TINT_ALPHA * (f32::from(t) - *channel);
                    }
                }
            }
            canvas
                .0
                .put_pixel(x as u32, y as u32, image::Rgb(rgb.map(|c| c as u8)));
        }
    }
    let scale = |v: usize| (v * width / frame.width) as i32;
    let outline = Rectangle::new(
        Point::new(scale(sector.x), scale(sector.y)),
        Size::new(scale(sector.w) as u32, scale(sector.h) as u32),
    );
    draw_bar(&mut canvas, scored, classes, height as i32);
    // Infallible: the canvas clips what falls outside.
    let _ = outline
        .into_styled(PrimitiveStyle::with_stroke(Rgb888::new(120, 120, 60), 1))
        .draw(&mut canvas);
    canvas
}

fn draw_bar(canvas: &mut Canvas, scored: &ScoredFrame, classes: &[String], top: i32) {
    let width = canvas.0.width();
    let small = MonoTextStyle::new(&FONT_6X10, Rgb888::new(220, 220, 220));
    let scores = &scored.scores;
    let clip = &scores.clip;
    let big = MonoTextStyle::new(&FONT_9X15_BOLD, score_colour(clip.score));
    let _ = Rectangle::new(Point::new(0, top), Size::new(width, BAR_HEIGHT))
        .into_styled(PrimitiveStyle::with_fill(Rgb888::new(20, 20, 24)))
        .draw(canvas);
    let headline = format!("CLIP {}", clip.score);
    let end = Text::with_baseline(&headline, Point::new(6, top + 4), big, Baseline::Top)
        .draw(canvas)
        .unwrap_or(Point::new(60, top));
    let status = if scored.provisional {
        "prelim"
    } else if scores.stable {
        "stable"
    } else {
        "settling"
    };
    let detail = format!(
        " conf {:.2} {status}   live {}   frame {}",
        clip.confidence,
        scores.live_score,
        scored.prediction.score()
    );
    let _ =
        Text::with_baseline(&detail, Point::new(end.x, top + 7), small, Baseline::Top).draw(canvas);
    let name = format!("{} #{}", scored.clip, scored.frame.seq);
    let mut x = Text::with_baseline(&name, Point::new(6, top + 25), small, Baseline::Top)
        .draw(canvas)
        .map(|p| p.x)
        .unwrap_or(6)
        + 12;
    for (class, label) in classes.iter().enumerate().skip(1) {
        let _ = Rectangle::new(Point::new(x, top + 26), Size::new(8, 8))
            .into_styled(PrimitiveStyle::with_fill(class_colour(class)))
            .draw(canvas);
        x = Text::with_baseline(label, Point::new(x + 11, top + 25), small, Baseline::Top)
            .draw(canvas)
            .map(|p| p.x)
            .unwrap_or(x)
            + 10;
    }
}
