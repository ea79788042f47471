//! The desktop window backend (cargo feature `window`), run headless on
//! SDL's dummy video driver: it opens, shows the live screen frame after
//! frame, and refuses cleanly when SDL cannot start.
#![cfg(feature = "window")]

use embedded_graphics::prelude::Size;
use pleura::display::{Bedside, Renderer, WindowSurface};
use pleura::exam::Session;

#[path = "common/display.rs"]
#[allow(dead_code)]
mod fixtures;

#[test]
fn the_window_shows_the_bedside_screen_on_a_headless_sdl() {
    // SAFETY: this test binary runs this one test; nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("SDL_VIDEODRIVER", "dummy") };
    let (input_sender, _inputs) = crossbeam_channel::unbounded();
    let window =
        WindowSurface::open(Size::new(480, 320), input_sender).expect("window on the dummy driver");
    let classes = ["background", "b_line", "consolidation"].map(String::from);
    let mut display = Bedside::new(Box::new(window), &classes);
    let session = Session::default();
    for frame in fixtures::phantom_scored_frames(30, 320, 256).iter() {
        assert!(display.show(frame, &session).expect("shown"));
    }
    display.finish(&session).expect("finished");
}
