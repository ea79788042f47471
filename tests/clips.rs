//! Clips on disk: decoding, and what happens with bad ones.

mod common;

use pleura::eval::prepare_clip;
use pleura::source::{SourceError, decode_clip};

#[test]
fn demo_clip_decodes_into_full_gray_frames() {
    let frames = decode_clip(&common::repo("tests/demo/healthy-score0.mp4"), None).unwrap();
    assert_eq!(frames.len(), 100, "4 s at 25 fps");
    assert!(
        frames
            .iter()
            .all(|f| f.width == 240 && f.pixels.len() == f.width * f.height)
    );
    assert_eq!(
        frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
}

#[test]
fn frame_subsampling_spreads_over_the_whole_clip() {
    let frames = decode_clip(&common::repo("tests/demo/healthy-score0.mp4"), Some(10)).unwrap();
    assert_eq!(frames.len(), 10);
    assert_eq!(frames.first().map(|f| f.seq), Some(0));
    assert_eq!(frames.last().map(|f| f.seq), Some(99));
}

#[test]
fn prepared_clip_is_cropped_to_the_sector_and_resized() {
    let clip = prepare_clip(&common::repo("tests/demo/covid-score2.mp4"), 128, Some(16)).unwrap();
    assert_eq!(clip.frames.len(), 16);
    assert!(clip.frames.iter().all(|f| f.len() == 128 * 128));
    // The sector fills most of this pre-cropped clip but not the black rows above it.
    assert!(clip.roi.w > 200 && clip.roi.h > 200, "{:?}", clip.roi);
}

#[test]
fn missing_clip_is_named() {
    let err = decode_clip(std::path::Path::new("/no/such/clip.mp4"), None).unwrap_err();
    assert!(matches!(err, SourceError::Missing { .. }));
    assert!(err.to_string().contains("/no/such/clip.mp4"));
}

#[test]
fn corrupt_clip_is_a_decode_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(
        &garbage,
        b"\x00\x00\x00\x18ftypmp42 definitely not video data",
    )
    .unwrap();
    let err = decode_clip(&garbage, None).unwrap_err();
    assert!(matches!(err, SourceError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.mp4"), "{err}");
}

#[test]
fn truncated_clip_is_refused_or_keeps_the_frames_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(common::repo("tests/demo/covid-score2.mp4")).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &full[..full.len() / 3]).unwrap();
    match decode_clip(&cut, None) {
        Ok(frames) => assert!(
            !frames.is_empty() && frames.len() < 100,
            "{} frames",
            frames.len()
        ),
        Err(e) => assert!(e.to_string().contains("cut.mp4"), "{e}"),
    }
}
