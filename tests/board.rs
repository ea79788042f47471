//! `pleura run` takes its settings from the board profile: the model and
//! its precision (int8 when the profile names none), the screen, the
//! grabber, the exam journal's folder and the threads. Flags given on the
//! command line win over the profile.

mod common;

use common::pleura;
use std::path::Path;

/// A profile in `dir` whose screen is PNG files in `screens` and whose data
/// folder is `data`.
fn write_profile(dir: &Path, model: &Path, screens: &Path, data: &Path) {
    let display = format!("png:{}", screens.display());
    let text = common::TestBoard {
        name: "bench",
        model: &model.display().to_string(),
        display: &display,
        grabber: ("/dev/pleura-no-such-grabber", "YUYV"),
        folders: (data, &data.join("slots")),
        update: None,
    }
    .toml();
    std::fs::write(dir.join("bench.toml"), text).unwrap();
}

/// The inference path a run report names.
fn precision(report: &Path) -> String {
    let text = std::fs::read_to_string(report).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    report["precision"].as_str().unwrap().to_string()
}

#[test]
fn run_uses_the_boards_screen_model_journal_and_grabber() {
    let dir = tempfile::tempdir().unwrap();
    let (screens, data) = (dir.path().join("screens"), dir.path().join("data"));
    std::fs::create_dir_all(&data).unwrap();
    write_profile(dir.path(), &common::shipped_model(), &screens, &data);
    let board = ["--boards", dir.path().to_str().unwrap(), "--board", "bench"];

    let output = common::succeed(pleura().args(board).args([
        "run",
        "--source",
        "phantom:score=1,frames=40",
        "--no-pace",
        "--exam",
        "blue",
        "--every",
        "20",
        "--report",
        dir.path().join("report.json").to_str().unwrap(),
    ]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("frames        40"), "{stdout}");
    assert_eq!(precision(&dir.path().join("report.json")), "int8");
    let screen = image::open(screens.join("last.png")).unwrap();
    assert_eq!((screen.width(), screen.height()), (480, 320), "board size");
    assert!(
        data.join("exam.jsonl").exists(),
        "journal in the data folder"
    );

    // Without --source, the board's grabber is opened, and named when absent.
    let output = pleura()
        .args(board)
        .args(["run", "--display", "none"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/dev/pleura-no-such-grabber"), "{stderr}");
}

#[test]
fn command_line_flags_win_over_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (screens, data) = (dir.path().join("screens"), dir.path().join("data"));
    let missing = dir.path().join("no-model.gguf");
    write_profile(dir.path(), &missing, &screens, &data);
    let board = ["--boards", dir.path().to_str().unwrap(), "--board", "bench"];
    let run = ["run", "--source", "phantom:score=0,frames=10", "--no-pace"];

    let output = pleura().args(board).args(run).output().unwrap();
    assert!(!output.status.success(), "the profile's model is missing");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-model.gguf"), "{stderr}");

    let model = common::shipped_model();
    let report = dir.path().join("report.json");
    common::succeed(pleura().args(board).args(run).args([
        "--model",
        model.to_str().unwrap(),
        "--display",
        "none",
        "--precision",
        "f32",
        "--report",
        report.to_str().unwrap(),
    ]));
    assert!(
        !screens.exists(),
        "--display none replaced the board's screen"
    );
    assert_eq!(precision(&report), "f32");
}

#[test]
fn a_pc_without_a_grabber_plays_the_demo_clips_and_says_why() {
    // The x86_64-dev profile's rule, on a profile whose grabber is surely
    // absent (the shipped one's /dev/video0 may be there).
    let dir = tempfile::tempdir().unwrap();
    let (screens, data) = (dir.path().join("screens"), dir.path().join("data"));
    write_profile(dir.path(), &common::shipped_model(), &screens, &data);
    let profile = dir.path().join("bench.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    let text = text.replace("[capture]\n", "[capture]\nwhen_absent = \"demo\"\n");
    std::fs::write(&profile, text).unwrap();
    let report = dir.path().join("report.json");
    // One demo clip is enough (a hundred times as slow under an emulator).
    let demo = dir.path().join("demo");
    std::fs::create_dir(&demo).unwrap();
    let clip = "covid-score1.mp4";
    std::fs::copy(common::repo("tests/demo").join(clip), demo.join(clip)).unwrap();

    let output = common::succeed(
        pleura()
            .args(["--boards", dir.path().to_str().unwrap(), "--board", "bench"])
            .args(["run", "--display", "none", "--no-pace", "--report"])
            .arg(&report)
            .arg("--demo-dir")
            .arg(&demo),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no grabber at /dev/pleura-no-such-grabber")
            && stderr.contains("playing the demo clips")
            && stderr.contains("when_absent"),
        "the log says why: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("clip          {clip}")),
        "the demo clip played: {stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["source"], "demo", "the report names what played");
}

#[test]
fn pleura_board_shows_the_named_or_the_fallback_profile() {
    let output = common::succeed(pleura().args(["--board", "rpi4", "board"]));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("cortex-a72") && shown.contains("aarch64"),
        "{shown}"
    );

    let output = pleura()
        .args(["--board", "rpi9", "board"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rpi9") && stderr.contains("rpi4"),
        "{stderr}"
    );
}

#[test]
fn a_profile_past_what_a_unit_can_use_is_refused_by_line_before_the_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (screens, data) = (dir.path().join("screens"), dir.path().join("data"));
    let cases = [
        (
            "threads = 1",
            "threads = 100000",
            "`threads` is 100000: use 1 to 64",
        ),
        (
            "size = [480, 320]",
            "size = [100000, 100000]",
            "`display.size`: size 100000x100000: each side must be 16 to 4096",
        ),
        (
            "size = [480, 320]",
            "size = [800, 480, 3]",
            "`display.size` has 3 numbers",
        ),
    ];
    for (from, to, what) in cases {
        write_profile(dir.path(), &common::shipped_model(), &screens, &data);
        let path = dir.path().join("bench.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen(from, to, 1);
        let line = text.lines().position(|l| l == to).unwrap() + 1;
        std::fs::write(&path, text).unwrap();
        let output = pleura()
            .args(["--boards", dir.path().to_str().unwrap(), "--board", "bench"])
            .args(["run", "--source", "phantom:score=1,frames=5", "--no-pace"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "refused, not aborted: {stderr}"
        );
        assert!(
            stderr.contains(&format!("bench.toml: line {line} (`{to}`)")) && stderr.contains(what),
            "{stderr}"
        );
        assert!(!screens.exists(), "nothing was drawn");
    }
    // The same rule as `--screen`.
    let output = pleura()
        .args(["run", "--screen", "100000x100000", "--display", "none"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("each side must be 16 to 4096"), "{stderr}");
}

#[test]
fn a_board_name_with_a_path_in_it_is_refused_from_the_flag_and_the_environment() {
    // A valid profile one folder up from the boards folder: `../outside`
    // would read it if names were paths.
    let dir = tempfile::tempdir().unwrap();
    let boards = dir.path().join("boards");
    std::fs::create_dir(&boards).unwrap();
    let (screens, data) = (dir.path().join("screens"), dir.path().join("data"));
    write_profile(&boards, &common::shipped_model(), &screens, &data);
    std::fs::copy(boards.join("bench.toml"), dir.path().join("outside.toml")).unwrap();
    let folder = ["--boards", boards.to_str().unwrap()];
    for name in ["../outside", "..", "", "./bench", "/etc/passwd"] {
        let by_flag = pleura()
            .args(folder)
            .args(["--board", name, "board"])
            .output()
            .unwrap();
        let by_env = pleura()
            .args(folder)
            .arg("board")
            .env("PLEURA_BOARD", name)
            .output()
            .unwrap();
        for output in [by_flag, by_env] {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{name:?} was accepted");
            assert!(
                stderr.contains(&format!("board name '{name}' is not a plain profile name"))
                    && stderr.contains("there are: bench"),
                "{name:?}: {stderr}"
            );
            assert!(output.stdout.is_empty(), "no profile is shown");
        }
    }
    // The same folder still works by plain name, from either place.
    common::succeed(pleura().args(folder).args(["--board", "bench", "board"]));
    common::succeed(
        pleura()
            .args(folder)
            .arg("board")
            .env("PLEURA_BOARD", "bench"),
    );
}

#[test]
fn thread_counts_from_the_environment_have_the_profiles_bounds() {
    // RAYON_NUM_THREADS sizes rayon's pool directly: 100000 would start
    // as many threads as `threads = 100000` in a profile did.
    for (var, value) in [
        ("RAYON_NUM_THREADS", "100000"),
        ("RAYON_NUM_THREADS", "0"),
        ("RAYON_NUM_THREADS", "many"),
        ("CANDLE_NUM_THREADS", "65"),
    ] {
        let started = std::time::Instant::now();
        let output = pleura()
            .args(["model", "info"])
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("{var}={value}")) && stderr.contains("1 to 64"),
            "{stderr}"
        );
        assert!(started.elapsed().as_secs() < 5);
    }
    common::succeed(
        pleura()
            .args(["model", "info"])
            .env("RAYON_NUM_THREADS", "64"),
    );
}
