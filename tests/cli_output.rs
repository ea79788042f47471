//! Where the command line writes, and what it does when it cannot
//! (issue 16): the run report is checked before the run, and a closed
//! standard output ends no command with a panic.

mod common;

use std::io::Read;
use std::process::Stdio;

#[test]
fn a_report_path_that_cannot_be_written_is_refused_before_the_run() {
    // It used to be found out only after the whole run, losing its report.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap().to_string();
    let missing_dir = dir.path().join("no/such/folder/r.json");
    let missing_dir = missing_dir.to_str().unwrap().to_string();
    for (report, says) in [
        ("/proc/forbidden/r.json", "No such file"),
        (missing_dir.as_str(), "No such file"),
        (folder.as_str(), "is a folder"),
    ] {
        let started = std::time::Instant::now();
        let output = common::pleura()
            .args([
                "run",
                "--source",
                "demo",
                "--display",
                "none",
                "--report",
                report,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{report}: {stderr}");
        assert!(
            stderr.contains("cannot write the run report") && stderr.contains(says),
            "{report}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{report}: nothing was played");
        // The demo plays for about 20 s in real time; refused at once.
        assert!(started.elapsed().as_secs() < 10, "{report}");
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// Runs `pleura ARGS` with its standard output closed after `keep` bytes
/// were read (like `| head -c keep`); its exit status and stderr.
fn with_stdout_closed_after(args: &[&str], keep: usize) -> (Option<i32>, String) {
    let mut child = common::pleura()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0; keep];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_goes_away_ends_no_command_with_a_panic() {
    // `pleura model info | head -1` and `pleura score CLIP | true` exited
    // 101 with "failed printing to stdout: Broken pipe". One clip is enough
    // for `run`: its report is many lines, written after the first byte
    // is read and the pipe closed.
    let clip = "file:tests/demo/covid-score1.mp4";
    for (args, keep) in [
        (&["model", "info"][..], 1),
        (&["score", "tests/demo/covid-score1.mp4"][..], 1),
        (
            &["run", "--source", clip, "--no-pace", "--display", "none"][..],
            1,
        ),
    ] {
        let (code, stderr) = with_stdout_closed_after(args, keep);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_screen_size_for_a_display_that_does_not_use_it_is_refused() {
    // Like --exam on `--display none` (issue 16, item 6): a flag that
    // would be silently ignored is refused before any work.
    for display in [
        "none",
        "frames:/tmp/pleura-never",
        "fb:/dev/null",
        "drm:/dev/null",
    ] {
        let output = common::pleura()
            .args([
                "run",
                "--source",
                "demo",
                "--screen",
                "800x480",
                "--display",
                display,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{display}: {stderr}");
        assert!(stderr.contains("--screen"), "{display}: {stderr}");
        assert!(output.stdout.is_empty(), "{display}: nothing was played");
    }
    assert!(!std::path::Path::new("/tmp/pleura-never").exists());
}

#[test]
fn a_phantom_set_index_with_empty_masks_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.json"),
        r#"{"size":128,"seg_size":0,"clips":[{"frames":1,"file":"f.u8","masks":"m.u8"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("f.u8"), vec![40u8; 128 * 128]).unwrap();
    std::fs::write(dir.path().join("m.u8"), b"").unwrap();
    let output = common::pleura()
        .args(["dataset", "dice"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("index.json") && stderr.contains("0 cells"),
        "{stderr}"
    );
}

#[test]
fn frames_made_for_the_model_must_have_a_side_a_model_can_take() {
    // `--size 100000` would allocate 10 GB per exported frame.
    for command in [
        &[
            "dataset",
            "export",
            "--dataset",
            "pocus",
            "/nonexistent",
            "--out",
            "/tmp/pleura-never",
        ][..],
        &["dataset", "phantom", "--out", "/tmp/pleura-never"][..],
    ] {
        for size in ["0", "100000", "136"] {
            let output = common::pleura()
                .args(command)
                .args(["--size", size])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command:?} {size}: {stderr}"
            );
            assert!(stderr.contains("model input side"), "{stderr}");
        }
    }
    assert!(!std::path::Path::new("/tmp/pleura-never").exists());
}
