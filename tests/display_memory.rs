//! The bedside display allocates nothing per frame once it runs: a device
//! that shows video for hours must not churn its heap. Counted with a
//! global allocator that sees only this test's thread.

use pleura::display::{Bedside, FbGeometry, PixelFormat, Renderer, Rotation};
use pleura::exam::Session;

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/display.rs"]
mod fixtures;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

#[test]
fn showing_frames_on_a_framebuffer_allocates_nothing_in_steady_state() {
    let frames = fixtures::phantom_scored_frames(60, 320, 256);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fb0");
    let geometry = FbGeometry {
        width: 800,
        height: 480,
        line_length: 800 * 4 + 64,
        format: PixelFormat::Xrgb8888,
    };
    let fb = fixtures::fake_framebuffer(&path, geometry, Rotation::R0);
    let classes = ["background", "b_line", "consolidation"].map(String::from);
    let mut display = Bedside::new(Box::new(fb), &classes);
    let session = Session::default();
    for frame in &frames[..10] {
        display.show(frame, &session).unwrap(); // warm-up: buffers reach their size
    }
    let allocations = alloc::on_this_thread(|| {
        for frame in &frames[10..] {
            display.show(frame, &session).unwrap();
        }
    });
    assert_eq!(allocations, 0, "heap allocations while showing 50 frames");
}
