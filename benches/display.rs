//! Bedside screen render time (`cargo bench --bench display`): milliseconds
//! per frame to draw the live screen and to convert it for a framebuffer,
//! at each supported screen size. The target is ≤ 5 ms at 800×480. The
//! baseline, measured in the same run on the same frames, is the annotated
//! frame of `--display frames:DIR` (`display::annotate`), which also scales
//! the frame and tints the segmentation.

use pleura::display::{
    Bedside, Canvas, FbGeometry, PixelFormat, Renderer, Rotation, ScreenPainter, ScreenState,
    annotate,
};
use pleura::exam::Session;
use std::time::Instant;

#[path = "../tests/common/display.rs"]
mod fixtures;

const FRAMES: usize = 200;
const ROUNDS: usize = 5;
const TARGET_MS: f64 = 5.0;

/// Median over rounds of the mean milliseconds per frame of `each`.
fn median_ms(mut each: impl FnMut(usize)) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for i in 0..FRAMES {
                each(i);
            }
            started.elapsed().as_secs_f64() * 1e3 / FRAMES as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    let frames = fixtures::phantom_scored_frames(FRAMES as u64, 320, 256);
    let classes = ["background", "b_line", "consolidation"].map(String::from);
    let baseline = median_ms(|i| {
        std::hint::black_box(annotate(&frames[i], &classes));
    });
    println!("frames: {FRAMES} phantom frames of 320x256, median of {ROUNDS} rounds, 1 thread");
    println!("baseline (annotated frame, 360x328): {baseline:.2} ms/frame\n");
    println!(
        "| screen | draw ms | draw + fb XRGB8888 ms | draw + fb RGB565 ms | × baseline | × target {TARGET_MS} ms |"
    );
    println!("|---|---|---|---|---|---|");
    let dir = std::env::temp_dir();
    for (w, h) in [(480u32, 320u32), (800, 480), (1024, 600), (1280, 720)] {
        let mut renderer = ScreenPainter::new();
        let mut canvas = Canvas::new(w, h);
        let mut state = ScreenState::default();
        let draw = median_ms(|i| {
            state.show_frame(&frames[i]);
            state.kind = pleura::display::ScreenKind::Live;
            renderer.draw(&mut canvas, &state, None, &classes);
        });
        let with_fb = |format: PixelFormat| {
            let path = dir.join(format!("pleura-bench-fb-{w}x{h}"));
            let geometry = FbGeometry {
                width: w,
                height: h,
                line_length: w as usize * format.bytes() + 64,
                format,
            };
            let fb = fixtures::fake_framebuffer(&path, geometry, Rotation::R0);
            let mut bedside = Bedside::new(Box::new(fb), &classes);
            let session = Session::default();
            let ms = median_ms(|i| {
                bedside.show(&frames[i], &session).expect("show");
            });
            let _ = std::fs::remove_file(&path);
            ms
        };
        let xrgb = with_fb(PixelFormat::Xrgb8888);
        let rgb565 = with_fb(PixelFormat::Rgb565);
        println!(
            "| {w}x{h} | {draw:.2} | {xrgb:.2} | {rgb565:.2} | {:.2} | {:.2} |",
            xrgb / baseline,
            xrgb / TARGET_MS
        );
    }
}
