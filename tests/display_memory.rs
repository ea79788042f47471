//! The bedside display allocates nothing per frame once it runs: a device
//! that shows video for hours must not churn its heap. Counted with a
//! global allocator that sees only this test's thread.

use pleura::display::{Bedside, FbGeometry, PixelFormat, Renderer, Rotation};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "common/display.rs"]
mod fixtures;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    let (_inputs, inputs) = crossbeam_channel::unbounded();
    let mut display = Bedside::new(Box::new(fb), &classes, None, inputs);
    for frame in &frames[..10] {
        display.show(frame).unwrap(); // warm-up: buffers reach their size
    }
    COUNTING.with(|c| c.set(true));
    for frame in &frames[10..] {
        display.show(frame).unwrap();
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "heap allocations while showing 50 frames"
    );
}
