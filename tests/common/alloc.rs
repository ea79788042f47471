//! A global allocator that counts heap blocks, for the tests that a hot
//! path allocates nothing, and sees the largest, for the tests that a
//! decoder allocates nothing for a picture it refuses. A test binary installs it with
//! `#[global_allocator] static ALLOCATOR: alloc::Counting = alloc::Counting;`.
#![allow(dead_code)] // each test binary uses one of the counts

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Forwards to the system allocator, counting allocations and
/// reallocations while a count is on.
pub struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static ALL_THREADS: AtomicBool = AtomicBool::new(false);
thread_local! {
    static THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn count(bytes: usize) {
    if ALL_THREADS.load(Ordering::Relaxed) || THIS_THREAD.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LARGEST.fetch_max(bytes, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap blocks that `f` allocates on the calling thread.
pub fn on_this_thread(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    THIS_THREAD.with(|c| c.set(true));
    f();
    THIS_THREAD.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Heap blocks allocated on every thread of the process while `f` runs.
pub fn on_all_threads(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    ALL_THREADS.store(true, Ordering::SeqCst);
    f();
    ALL_THREADS.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// The largest heap block, in bytes, that `f` asks for on the calling
/// thread (whether or not its pages are ever touched).
pub fn largest_on_this_thread(f: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::SeqCst);
    THIS_THREAD.with(|c| c.set(true));
    f();
    THIS_THREAD.with(|c| c.set(false));
    LARGEST.load(Ordering::SeqCst)
}
