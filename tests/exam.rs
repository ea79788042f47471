//! The exam workflow end to end: `pleura run --exam` driven by scripted
//! keys on its standard input, the journal it keeps, and what survives a
//! `kill -9` in the middle of an exam.

mod common;

#[path = "common/hospital.rs"]
#[allow(dead_code)]
mod fixtures;

use common::{pleura, succeed};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

/// A `pleura run` child process, killed when dropped: a failed test does not
/// leave its live run (a clip of 100000 frames) behind.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A live run on a long phantom clip, in real time, with an exam journal;
/// returns once it scores frames.
fn start_exam_run(journal: &Path, screens: &Path) -> (Run, ChildStdin, PathBuf) {
    start_exam_run_with(journal, screens, &[])
}

/// [`start_exam_run`] with more arguments for `pleura run`.
fn start_exam_run_with(
    journal: &Path,
    screens: &Path,
    more: &[&std::ffi::OsStr],
) -> (Run, ChildStdin, PathBuf) {
    let frame_log = screens.with_extension("frames.jsonl");
    let _ = std::fs::remove_file(&frame_log);
    let mut child = Run(pleura()
        .args([
            "run",
            "--source",
            "phantom:score=0,frames=100000",
            "--exam",
            "blue",
            "--every",
            "50",
        ])
        .arg(format!("--display=png:{}", screens.display()))
        .arg("--journal")
        .arg(journal)
        .arg("--log")
        .arg(&frame_log)
        .args(more)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pleura run starts"));
    let stdin = child.0.stdin.take().expect("stdin");
    wait_for_frames(&frame_log, 40);
    (child, stdin, frame_log)
}

fn frames_scored(frame_log: &Path) -> usize {
    std::fs::read_to_string(frame_log).map_or(0, |log| log.lines().count())
}

/// How long to wait for the run: a minute, or ten under emulation (where
/// the network runs ~100 times slower and the host may be busy).
fn patience() -> Duration {
    if std::env::var_os("PLEURA_TEST_RUNNER").is_some() {
        Duration::from_secs(600)
    } else {
        Duration::from_secs(60)
    }
}

/// Waits until the run's frame log holds `count` frames.
fn wait_for_frames(frame_log: &Path, count: usize) {
    let deadline = Instant::now() + patience();
    while frames_scored(frame_log) < count {
        assert!(
            Instant::now() < deadline,
            "pleura run scored no {count} frames in {:?}",
            patience()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Presses `key`, then waits for a few more frames: the display has then
/// handled the key and seen frames of the zone it selected.
fn press_and_settle(keys: &mut ChildStdin, key: &str, frame_log: &Path) {
    let before = frames_scored(frame_log);
    press(keys, key);
    wait_for_frames(frame_log, before + 4);
}

fn press(keys: &mut ChildStdin, key: &str) {
    keys.write_all(key.as_bytes()).expect("send key");
    keys.flush().expect("flush key");
}

/// The journal's events, in order (a torn last line is left out).
fn events(journal: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Waits until the journal holds `count` events of `kind`.
fn wait_for(journal: &Path, kind: &str, count: usize) {
    let deadline = Instant::now() + patience();
    loop {
        let seen = events(journal)
            .iter()
            .filter(|e| e["event"] == kind)
            .count();
        if seen >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {count} '{kind}' events in {:?}: {:?}",
            patience(),
            events(journal)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pleura exam JOURNAL`: the recovered exam as JSON.
fn recovered(journal: &Path) -> serde_json::Value {
    let output = succeed(pleura().arg("exam").arg(journal));
    serde_json::from_slice(&output.stdout).expect("exam JSON")
}

fn stop(mut child: Run) {
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = child.0.wait().expect("pleura exits");
    assert!(status.success(), "pleura run ended with {status}");
}

#[test]
fn a_scripted_exam_records_zones_by_stability_and_by_key_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, screens) = (dir.path().join("exam.jsonl"), dir.path().join("screens"));
    let (child, mut keys, frame_log) = start_exam_run(&journal, &screens);

    let pressed = Instant::now(); // the zone is armed after this
    press(&mut keys, "s"); // start: zone R-up is selected and armed
    wait_for(&journal, "started", 1);
    wait_for(&journal, "recorded", 1); // held still until the score was stable
    assert!(
        pressed.elapsed() >= pleura::exam::MIN_ZONE_HOLD,
        "recorded before the probe was held"
    );
    press_and_settle(&mut keys, "n", &frame_log); // next zone, armed
    press(&mut keys, "r"); // recorded at once by the button
    wait_for(&journal, "recorded", 2);
    press(&mut keys, "d"); // redo R-low: cleared, armed again
    wait_for(&journal, "cleared", 1);
    wait_for(&journal, "recorded", 3);
    press(&mut keys, "x");
    wait_for(&journal, "finished", 1);
    stop(child);

    let exam = recovered(&journal);
    assert_eq!(exam["protocol"], "blue6");
    assert_eq!(exam["finished"], true);
    let zones = exam["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 6);
    assert_eq!(zones[0]["manual"], false, "R-up was recorded by stability");
    assert_eq!(
        zones[1]["manual"], false,
        "R-low was redone and recorded by stability"
    );
    assert!(zones[2..].iter().all(|z| z.is_null()), "{zones:?}");
    let sum: u64 = zones.iter().filter_map(|z| z["score"].as_u64()).sum();
    assert_eq!(exam["total"].as_u64(), Some(sum));
    let finished = events(&journal)
        .into_iter()
        .find(|e| e["event"] == "finished")
        .unwrap();
    assert_eq!(finished["total"].as_u64(), Some(sum));
    let manual = events(&journal)
        .into_iter()
        .filter(|e| e["event"] == "recorded")
        .nth(1)
        .unwrap();
    assert_eq!(manual["manual"], true, "the R key records a manual score");
    assert!(
        screens.join("last.png").is_file(),
        "the summary screen was drawn"
    );
}

#[test]
fn zones_recorded_before_a_kill_9_are_there_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, screens) = (dir.path().join("exam.jsonl"), dir.path().join("screens"));
    let (mut child, mut keys, frame_log) = start_exam_run(&journal, &screens);
    press(&mut keys, "s");
    wait_for(&journal, "recorded", 1);
    press_and_settle(&mut keys, "n", &frame_log);
    press(&mut keys, "r");
    wait_for(&journal, "recorded", 2);
    let before = recovered(&journal);
    child.0.kill().expect("SIGKILL"); // no chance to flush or clean up
    child.0.wait().expect("reaped");

    let after = recovered(&journal);
    assert_eq!(
        after["zones"], before["zones"],
        "recorded zones survive kill -9"
    );
    assert_eq!(after["finished"], false);
    let recorded = after["zones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|z| !z.is_null())
        .count();
    assert_eq!(recorded, 2);

    // The restarted unit resumes the same exam and goes on recording.
    let (child, mut keys, frame_log) = start_exam_run(&journal, &screens);
    press_and_settle(&mut keys, "n", &frame_log);
    press(&mut keys, "r");
    wait_for(&journal, "recorded", 3);
    stop(child);
    let resumed = recovered(&journal);
    assert_eq!(resumed["zones"][0], before["zones"][0]);
    assert_eq!(resumed["zones"][1], before["zones"][1]);
    assert!(
        !resumed["zones"][2].is_null(),
        "the third zone was recorded after the restart"
    );
    assert_eq!(
        events(&journal)
            .iter()
            .filter(|e| e["event"] == "started")
            .count(),
        1
    );
}

#[test]
fn an_exam_on_a_display_that_cannot_show_it_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("exam.jsonl");
    let frames = dir.path().join("frames");
    // A missing model: a refusal that came after loading it would name it.
    let model = dir.path().join("no-model.gguf");
    for (display, says) in [
        ("none".to_string(), "--display none shows nothing"),
        (
            format!("frames:{}", frames.display()),
            "writes annotated frames, not the bedside screen",
        ),
    ] {
        let journal_arg = format!("--journal={}", journal.display());
        let cases: [&[&str]; 2] = [&["--exam", "12", &journal_arg], &["--input", "/dev/null"]];
        for asked in cases {
            let flag = asked[0];
            let output = pleura()
                .args(["run", "--source", "phantom:score=1,frames=20", "--no-pace"])
                .args(["--display", &display])
                .args(asked)
                .arg("--model")
                .arg(&model)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{display} {flag}: {stderr}");
            assert!(
                stderr.contains(&format!("{flag} needs the bedside screen"))
                    && stderr.contains(says),
                "{display} {flag}: {stderr}"
            );
            assert!(
                !stderr.contains("no-model"),
                "refused before the model: {stderr}"
            );
            assert!(!journal.exists() && !frames.exists(), "nothing was written");
        }
    }
    // A journal without an exam would be ignored just the same.
    let output = pleura()
        .args([
            "run",
            "--source",
            "phantom:score=1,frames=20",
            "--display",
            "none",
        ])
        .arg("--journal")
        .arg(&journal)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--exam"));
}

#[test]
fn an_exam_on_auto_when_no_screen_opens_is_refused() {
    if ["/dev/dri/card0", "/dev/fb0"]
        .iter()
        .any(|p| Path::new(p).exists())
        || cfg!(feature = "window")
    {
        eprintln!("skipped: this machine has a screen for --display auto");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = pleura()
        .args(["run", "--source", "phantom:score=1,frames=20", "--no-pace"])
        .args(["--display", "auto", "--exam", "12"])
        .arg("--journal")
        .arg(dir.path().join("exam.jsonl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--exam needs the bedside screen")
            && stderr.contains("--display auto found no screen"),
        "{stderr}"
    );
}

#[test]
fn pleura_exam_refuses_an_impossible_event_by_its_line_and_reads_no_device() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("exam.jsonl");
    let started = r#"{"event":"started","protocol":"blue6","time":1}"#;
    let recorded = |zone: u32, score: u32| {
        format!(
            r#"{{"event":"recorded","zone":{zone},"score":{score},"confidence":0.8,"manual":true,"time":2}}"#
        )
    };
    let cases = [
        (
            vec![started.to_string(), recorded(0, 9)],
            2,
            "score 9 is not a Soldati score (0–3)",
        ),
        (
            vec![started.to_string(), recorded(99, 2), recorded(1, 1)],
            2,
            "zone 99 is not a zone of the BLUE protocol (0 to 5)",
        ),
        (
            vec![recorded(0, 2)],
            1,
            "a 'recorded' event before the exam was started",
        ),
    ];
    for (lines, line, says) in cases {
        std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
        let output = pleura().arg("exam").arg(&journal).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{lines:?}: {stderr}");
        assert!(
            stderr.contains(&format!("exam.jsonl, line {line}: {says}")),
            "{lines:?}: {stderr}"
        );
    }

    let begun = Instant::now();
    let output = pleura().args(["exam", "/dev/zero"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/dev/zero: a character device, not a regular file"),
        "{stderr}"
    );
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "read without a limit"
    );

    let screens = dir.path().join("screens");
    let output = pleura()
        .args(["run", "--source", "phantom:score=0,frames=10", "--no-pace"])
        .args(["--exam", "12", "--journal", "/dev/full"])
        .arg(format!("--display=png:{}", screens.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/dev/full: a character device, not a regular file"),
        "{stderr}"
    );
}

#[test]
fn a_finished_exam_is_queued_and_the_unit_stores_it_on_the_pacs() {
    let orthanc = fixtures::Orthanc::start();
    let dir = tempfile::tempdir().unwrap();
    let (boards, board) = fixtures::board_in(dir.path());
    let (journal, screens) = (dir.path().join("exam.jsonl"), dir.path().join("screens"));
    let peer = orthanc.peer().to_string();
    let more: Vec<&std::ffi::OsStr> = vec![
        "--boards".as_ref(),
        boards.as_os_str(),
        "--board".as_ref(),
        "x86_64-dev".as_ref(),
        "--pacs".as_ref(),
        peer.as_ref(),
    ];
    let (child, mut keys, frame_log) = start_exam_run_with(&journal, &screens, &more);
    press(&mut keys, "s");
    wait_for(&journal, "started", 1);
    record_one_zone_finish_and_wait_for_the_pacs(&mut keys, &journal, &frame_log, &orthanc);
    // The job is marked sent once the PACS has answered the last store,
    // a moment after Orthanc holds it.
    let outbox = pleura::hospital::outbox::Outbox::for_board(&board);
    let sent = |jobs: &[pleura::hospital::outbox::JobFile]| {
        jobs.len() == 1
            && jobs[0]
                .1
                .as_ref()
                .is_ok_and(|job| job.state() == pleura::hospital::outbox::JobState::Sent)
    };
    let deadline = Instant::now() + patience();
    while !sent(&outbox.jobs().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "the job was never marked sent: {:?}",
            outbox.jobs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
    assert_eq!(orthanc.instances(), 3);
    assert!(sent(&outbox.jobs().unwrap()), "still sent after the stop");
}

/// Records the current zone by key, finishes the exam, and waits until the
/// PACS holds its three objects (the zone's clip, the summary capture and
/// the report).
fn record_one_zone_finish_and_wait_for_the_pacs(
    keys: &mut ChildStdin,
    journal: &Path,
    frame_log: &Path,
    orthanc: &fixtures::Orthanc,
) {
    press_and_settle(keys, "r", frame_log);
    wait_for(journal, "recorded", 1);
    press(keys, "x");
    wait_for(journal, "finished", 1);
    let deadline = Instant::now() + patience();
    while orthanc.instances() < 3 {
        assert!(Instant::now() < deadline, "the exam never reached the PACS");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Presses `key` every half second until the journal holds a `started`
/// event: the worklist's answer may take a moment to show.
fn press_until_started(keys: &mut ChildStdin, key: &str, journal: &Path) {
    let deadline = Instant::now() + patience();
    while !events(journal).iter().any(|e| e["event"] == "started") {
        assert!(Instant::now() < deadline, "the exam never started");
        press(keys, key);
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_exam_is_of_the_patient_picked_from_the_worklist_and_reaches_the_pacs_as_theirs() {
    let today = pleura::hospital::worklist::today();
    let entries = [fixtures::worklist_entry(
        "ROE^RICHARD",
        "MRN-55",
        "ACC-55",
        "1.2.826.0.1.3680043.10.543.55",
        "PLEURA",
        &today,
    )];
    let orthanc = fixtures::Orthanc::start_with(fixtures::free_port(), &entries);
    let dir = tempfile::tempdir().unwrap();
    let (boards, _) = fixtures::board_in(dir.path());
    let (journal, screens) = (dir.path().join("exam.jsonl"), dir.path().join("screens"));
    let peer = orthanc.peer().to_string();
    let more: Vec<&std::ffi::OsStr> = vec![
        "--boards".as_ref(),
        boards.as_os_str(),
        "--worklist".as_ref(),
        peer.as_ref(),
        "--pacs".as_ref(),
        peer.as_ref(),
    ];
    let (child, mut keys, frame_log) = start_exam_run_with(&journal, &screens, &more);
    press(&mut keys, "s"); // asks the worklist
    press_until_started(&mut keys, "r", &journal); // picks the first row
    record_one_zone_finish_and_wait_for_the_pacs(&mut keys, &journal, &frame_log, &orthanc);
    stop(child);
    let exam = recovered(&journal);
    assert_eq!(exam["identity"]["patient"]["id"], "MRN-55", "{exam}");
    // The report the PACS holds scores the zones as the journal does.
    let reports = orthanc.files_of_class("1.2.840.10008.5.1.4.1.1.88.33");
    assert_eq!(reports.len(), 1);
    let sr = dir.path().join("report.dcm");
    std::fs::write(&sr, &reports[0]).unwrap();
    let dump = std::process::Command::new("dsrdump")
        .arg(&sr)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    let scores: Vec<String> = dump
        .lines()
        .filter_map(|l| l.split("\"Lung ultrasound zone score\")=\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect();
    let journaled: Vec<String> = exam["zones"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|z| z["score"].as_u64().map(|s| s.to_string()))
        .collect();
    assert!(!journaled.is_empty());
    assert_eq!(scores, journaled, "{dump}");
    assert!(
        dump.contains(&format!(
            "\"Lung ultrasound score\")=\"{}\"",
            exam["total"].as_u64().unwrap()
        )),
        "{dump}"
    );
    assert_eq!(exam["identity"]["accession"], "ACC-55");
    for id in orthanc.get("/instances").as_array().unwrap() {
        let tags = orthanc.get(&format!(
            "/instances/{}/simplified-tags",
            id.as_str().unwrap()
        ));
        assert_eq!(tags["PatientID"], "MRN-55", "{tags}");
        assert_eq!(tags["PatientName"], "ROE^RICHARD", "{tags}");
        assert_eq!(tags["StudyInstanceUID"], "1.2.826.0.1.3680043.10.543.55");
    }
}

#[test]
fn a_worklist_that_never_answers_leaves_the_exam_anonymous_and_going() {
    // Takes the connection and says nothing, like a hung server.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let connections: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(connections);
    });
    let dir = tempfile::tempdir().unwrap();
    let (journal, screens) = (dir.path().join("exam.jsonl"), dir.path().join("screens"));
    let peer = format!("WORKLIST@127.0.0.1:{port}");
    let more: Vec<&std::ffi::OsStr> = vec!["--worklist".as_ref(), peer.as_ref()];
    let (child, mut keys, _) = start_exam_run_with(&journal, &screens, &more);
    let asked = Instant::now();
    press(&mut keys, "s");
    wait_for(&journal, "started", 1);
    assert!(
        asked.elapsed() >= pleura::hospital::worklist::WORKLIST_TIMEOUT,
        "anonymous only once the worklist timed out"
    );
    wait_for(&journal, "recorded", 1); // the exam goes on: a zone records
    stop(child);
    let exam = recovered(&journal);
    assert!(exam["identity"]["patient"].is_null(), "{exam}");
    assert!(
        exam["identity"]["accession"]
            .as_str()
            .unwrap()
            .starts_with("PL")
    );
    drop(held);
}
