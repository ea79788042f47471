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
    let clip = prepare_clip(
        &common::repo("tests/demo/covid-score2.mp4"),
        128,
        Some(16),
        0,
    )
    .unwrap();
    assert_eq!(clip.frames.len(), 16);
    assert!(clip.frames.iter().all(|f| f.len() == 128 * 128));
    // The sector fills most of this pre-cropped clip but not the black rows above it.
    let roi = clip.roi.expect("a sector");
    assert!(roi.w > 200 && roi.h > 200, "{roi:?}");
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

/// `pleura ARGS` from the repository root: its exit status and stderr.
fn pleura_fails(args: &[&str]) -> String {
    let output = common::pleura().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} should fail: {stderr}");
    stderr
}

#[test]
fn a_clip_or_folder_of_the_wrong_kind_is_named_with_what_it_is_not_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, file) = (dir.path().to_str().unwrap(), dir.path().join("clip.mp4"));
    std::fs::write(&file, b"x").unwrap();
    let file = file.to_str().unwrap();
    let run = |source: String| {
        pleura_fails(&[
            "--board",
            "x86_64-dev",
            "run",
            "--source",
            &source,
            "--display",
            "none",
            "--no-pace",
        ])
    };
    let cases = [
        (
            pleura_fails(&["score", folder]),
            folder,
            "is a folder, not a clip file",
        ),
        (
            pleura_fails(&["score", "/dev/zero"]),
            "/dev/zero",
            "is a character device",
        ),
        (
            run(format!("file:{folder}")),
            folder,
            "is a folder, not a clip file",
        ),
        (
            run(format!("dir:{file}")),
            file,
            "is a regular file, not a folder",
        ),
        (
            run("dir:/dev/zero".into()),
            "/dev/zero",
            "is a character device, not a folder",
        ),
        (
            pleura_fails(&["exam", folder]),
            folder,
            "a folder, not a regular file",
        ),
    ];
    for (stderr, path, expected) in cases {
        assert!(
            stderr.contains(&format!("{path}: {expected}")),
            "expected '{path}: {expected}' in: {stderr}"
        );
        assert!(!stderr.contains("no such"), "not missing: {stderr}");
    }
    // Only what the system says is missing is called missing.
    let gone = dir.path().join("gone");
    let gone = gone.to_str().unwrap();
    for stderr in [
        pleura_fails(&["score", gone]),
        run(format!("dir:{gone}")),
        pleura_fails(&["exam", gone]),
    ] {
        assert!(stderr.contains(&format!("{gone}: no such")), "{stderr}");
    }
}

/// Makes `name` in `dir` with ffmpeg from `args` (inputs and codec).
fn ffmpeg_clip(dir: &std::path::Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let clip = dir.join(name);
    common::succeed(
        std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y"])
            .args(args)
            .arg(&clip),
    );
    clip
}

#[test]
fn a_clip_wider_than_the_limit_is_refused_at_open_naming_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let gray = |size: &str| format!("color=c=gray:s={size}:d=0.2:r=25");
    let wide = ffmpeg_clip(
        dir.path(),
        "wide.mp4",
        &["-f", "lavfi", "-i", &gray("4100x16"), "-pix_fmt", "yuv420p"],
    );
    let at_limit = ffmpeg_clip(
        dir.path(),
        "at-limit.mp4",
        &["-f", "lavfi", "-i", &gray("4096x16"), "-pix_fmt", "yuv420p"],
    );
    assert_eq!(decode_clip(&at_limit, None).unwrap().len(), 5);
    let Err(err) = decode_clip(&wide, None) else {
        panic!("the 4100x16 clip was decoded");
    };
    assert!(matches!(err, SourceError::Decode { .. }), "{err:?}");
    let wide = wide.to_str().unwrap();
    let run = pleura_fails(&[
        "--board",
        "x86_64-dev",
        "run",
        "--source",
        &format!("file:{wide}"),
        "--display",
        "none",
        "--no-pace",
    ]);
    for message in [err.to_string(), pleura_fails(&["score", wide]), run] {
        assert!(
            message.contains(&format!(
                "{wide}: cannot decode: its video declares 4100x16 pixels"
            )) && message.contains("4096x4096"),
            "{message}"
        );
    }
}

#[test]
fn frames_that_grow_past_the_limit_midway_are_not_decoded() {
    // A Motion-JPEG stream of five 64×48 pictures, then two of 4100×4100:
    // the clip opens at 64×48, and ffmpeg refuses the large pictures
    // rather than decoding them (and scaling them down) behind the probe.
    let dir = tempfile::tempdir().unwrap();
    let mjpeg = |name: &str, size: &str, frames: &str| {
        let source = format!("color=c=gray:s={size}:r=25");
        let args = [
            "-f",
            "lavfi",
            "-i",
            &source,
            "-frames:v",
            frames,
            "-f",
            "mjpeg",
        ];
        std::fs::read(ffmpeg_clip(dir.path(), name, &args)).unwrap()
    };
    let mut stream = mjpeg("small.mjpeg", "64x48", "5");
    stream.extend(mjpeg("large.mjpeg", "4100x4100", "2"));
    let clip = dir.path().join("grows.mjpeg");
    std::fs::write(&clip, stream).unwrap();
    let frames = decode_clip(&clip, None).unwrap();
    assert_eq!(frames.len(), 5, "only the 64x48 pictures");
    assert!(frames.iter().all(|f| (f.width, f.height) == (64, 48)));
}
