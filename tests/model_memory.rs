//! The int8 path allocates nothing per frame once it runs: its buffers are
//! made when the model loads. The only heap blocks a frame makes are the
//! two of the prediction it hands back (the list and the segmentation
//! labels), which the caller keeps, and, on several threads, rayon's
//! occasional job-queue block. Counted with a global allocator over every
//! thread of the process.

mod common;

use pleura::model::{LusNet, Precision};
use pleura::preprocess::{clip_inputs, detect_sector};
use pleura::source::decode_clip;

#[path = "common/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Heap blocks per frame that `net` allocates over `inputs` after warming
/// up on the first ten, and the predictions, which must be kept alive.
fn blocks_per_frame(net: &LusNet, inputs: &[Vec<u8>]) -> f64 {
    let (warm_up, measured) = inputs.split_at(10);
    for input in warm_up {
        net.predict(&[input]).unwrap(); // thread pool and panels reach their size
    }
    let mut predictions = Vec::with_capacity(measured.len());
    let blocks = alloc::on_all_threads(|| {
        for input in measured {
            predictions.push(net.predict(&[input]).unwrap());
        }
    });
    let size = net.meta().input_size;
    assert!(
        predictions
            .iter()
            .all(|p| p[0].seg_labels.len() == (size / 4).pow(2))
    );
    blocks as f64 / measured.len() as f64
}

#[test]
fn the_int8_path_allocates_only_the_prediction_it_returns() {
    // The model reads its thread count when it loads; rayon's pool reads
    // RAYON_NUM_THREADS when it starts, at the first split product.
    // SAFETY: set before any other thread of this test binary reads it.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    let one = LusNet::load(&common::shipped_model(), Precision::Int8).unwrap();
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "2") };
    let two = LusNet::load(&common::shipped_model(), Precision::Int8).unwrap();
    let clip = common::repo("tests/demo/covid-score2.mp4");
    let frames = decode_clip(&clip, Some(70)).unwrap();
    let roi = detect_sector(&frames).unwrap();
    let size = one.meta().input_size;
    let inputs = clip_inputs(&frames, roi, size, one.meta().history_step);

    let on_one_thread = blocks_per_frame(&one, &inputs);
    assert_eq!(
        on_one_thread, 2.0,
        "heap blocks per frame on one thread (the returned prediction holds 2)"
    );
    // Split across two threads, rayon's job queue adds one block per 63
    // jobs (it replaces, and frees, a full block of its queue): about 0.1
    // per frame, a constant churn that leaves memory flat.
    let on_two_threads = blocks_per_frame(&two, &inputs);
    assert!(
        (2.0..=2.25).contains(&on_two_threads),
        "heap blocks per frame on two threads: {on_two_threads:.3}"
    );
}
