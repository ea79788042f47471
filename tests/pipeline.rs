//! The bedside pipeline, end to end: what `pleura run` must do with good
//! streams, bad frames, dying sources, slow outputs and stop signals.

mod common;

use common::pleura;
use pleura::display::{DisplayError, NoDisplay, Renderer};
use pleura::exam::{Command, Journal, Protocol, Session};
use pleura::frame::GrayFrame;
use pleura::input::Input;
use pleura::model::{LusNet, Precision};
use pleura::pipeline::{Heartbeat, RunOptions, Stages, run};
use pleura::preprocess::SectorMode;
use pleura::record::{EndReason, FrameLog, Recorder, RunReport};
use pleura::scoring::ScoredFrame;
use pleura::source::{FrameSource, SourceError, decode_clip};
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The shipped model at the precision every board profile runs.
fn model() -> LusNet {
    common::init_threads();
    LusNet::load(&common::shipped_model(), Precision::Int8).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The display double of these tests: it takes `delay` to show a frame,
/// fails like a buggy backend (a panic) from frame `panic_from` on, and
/// remembers each report that no frame came in `idle`.
#[derive(Default)]
struct TestDisplay {
    delay: Duration,
    panic_from: Option<u64>,
    idle: Option<Arc<std::sync::Mutex<Vec<Duration>>>>,
}

impl Renderer for TestDisplay {
    fn show(&mut self, frame: &ScoredFrame, _: &Session) -> Result<bool, DisplayError> {
        if let Some(from) = self.panic_from {
            assert!(frame.frame.seq < from, "a bug in a display backend");
        }
        std::thread::sleep(self.delay);
        Ok(true)
    }

    fn idle(&mut self, since_last: Duration, _: &Session) -> Result<bool, DisplayError> {
        let Some(idle) = &self.idle else {
            return Ok(false);
        };
        idle.lock().unwrap().push(since_last);
        Ok(true)
    }

    fn finish(&mut self, _: &Session) -> Result<(), DisplayError> {
        Ok(())
    }
}

fn demo_frames(count: usize) -> Vec<GrayFrame> {
    let clip = common::repo("tests/demo/healthy-score0.mp4");
    decode_clip(&clip, None)
        .unwrap()
        .into_iter()
        .take(count)
        .collect()
}

/// A source that plays a script of frames and errors.
struct Scripted {
    steps: VecDeque<Result<GrayFrame, SourceError>>,
    rate: Option<f64>,
}

impl FrameSource for Scripted {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        self.steps.pop_front().transpose()
    }

    fn clip_name(&self) -> &str {
        "scripted"
    }

    fn frame_rate(&self) -> Option<f64> {
        self.rate
    }
}

fn options(pace: bool) -> RunOptions {
    RunOptions {
        pace,
        sector: SectorMode::Auto,
        stop: Arc::new(AtomicBool::new(false)),
    }
}

fn play(source: Scripted, renderer: Box<dyn Renderer>, log: Option<&Path>) -> RunReport {
    play_exam(source, renderer, log, &mut Session::default(), None)
}

/// Plays `source` with an exam `session`, and a `clinician` at the keys.
fn play_exam(
    source: Scripted,
    renderer: Box<dyn Renderer>,
    log: Option<&Path>,
    session: &mut Session,
    clinician: Option<Clinician>,
) -> RunReport {
    let model = model();
    let classes = model.meta().seg_classes.clone();
    let log = log.map(|p| FrameLog::create(p).unwrap());
    let (keys, inputs) = crossbeam_channel::unbounded();
    let heartbeat = clinician.map(|mut clinician| {
        clinician.keys = Some(keys);
        Box::new(clinician) as Box<dyn Heartbeat>
    });
    let stages = Stages {
        source: Box::new(source),
        model: &model,
        renderer,
        recorder: Recorder::new(classes, log),
        session,
        inputs,
        heartbeat,
    };
    run(stages, &options(false), "scripted", "shipped")
}

/// The clinician of these tests: presses each key of a script once the run
/// has recorded its number of frames, one key per heartbeat, and only after
/// a frame came since the last key (so that the zone has seen a frame).
#[derive(Default)]
struct Clinician {
    script: VecDeque<(u64, Command)>,
    keys: Option<crossbeam_channel::Sender<Input>>,
    last_key_at: Option<u64>,
}

impl Heartbeat for Clinician {
    fn beat(&mut self, recorded: u64) {
        let Some(&(after, command)) = self.script.front() else {
            return;
        };
        if recorded >= after
            && self.last_key_at.is_none_or(|at| recorded > at)
            && let Some(keys) = &self.keys
        {
            keys.send(Input::Command(command)).unwrap();
            self.script.pop_front();
            self.last_key_at = Some(recorded);
        }
    }
}

/// A BLUE exam journaled in a temporary folder.
fn blue_exam(dir: &Path) -> (Session, PathBuf) {
    let path = dir.join("exam.jsonl");
    let session = Session::with_exam(Protocol::Blue6, Journal::open(&path).unwrap());
    (session, path)
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn a_demo_clip_run_writes_a_complete_report_frames_and_log() {
    let out = tempfile::tempdir().unwrap();
    let (report, log, frames) = (
        out.path().join("r.json"),
        out.path().join("f.jsonl"),
        out.path().join("frames"),
    );
    let output = pleura()
        .args([
            "run",
            "--source",
            "file:tests/demo/healthy-score0.mp4",
            "--no-pace",
        ])
        .arg(format!("--display=frames:{}", frames.display()))
        .args(["--every", "10", "--report"])
        .arg(&report)
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("score         0"), "{stdout}");
    let r = read_json(&report);
    assert_eq!(r["end"]["kind"], "end_of_stream");
    let clip = &r["clips"][0];
    assert_eq!(clip["name"], "healthy-score0.mp4");
    assert_eq!(clip["score"], 0, "the healthy demo clip scores 0");
    assert!(clip["confidence"].as_f64().unwrap() > 0.25);
    // Every frame is scored and in the series; the clip score counts those
    // on the locked sector and the provisional ones that agree with it.
    assert_eq!(clip["series"].as_array().unwrap().len(), 100);
    let provisional = clip["provisional_frames"].as_u64().unwrap();
    assert_eq!(provisional, 31, "scored before the lock at the 32nd frame");
    let counted = clip["frames"].as_u64().unwrap();
    assert!((100 - provisional..=100).contains(&counted), "{counted}");
    for key in [
        "score",
        "probs",
        "live_score",
        "clip_score",
        "stable",
        "areas",
    ] {
        assert!(!clip["series"][0][key].is_null(), "series lacks {key}");
    }
    let counts = &r["frames"];
    assert_eq!(counts["captured"], 100);
    assert_eq!(counts["scored"], 100);
    assert_eq!(counts["dropped"], 0, "--no-pace drops nothing");
    for stage in [
        "capture",
        "preprocess",
        "inference",
        "scoring",
        "render",
        "end_to_end",
    ] {
        let s = &r["latency"][stage];
        assert!(s["median_ms"].as_f64().unwrap() > 0.0, "{stage}: {s}");
        assert!(s["p99_ms"].as_f64().unwrap() >= s["median_ms"].as_f64().unwrap());
    }
    assert!(r["fps"].as_f64().unwrap() > 0.0);
    assert_eq!(line_count(&log), 100);
    // The display is shown the newest scored frame whenever it is free, and
    // draws every 10th it is shown: 10 when it keeps up with the model, fewer
    // when the model outpaces it (the int8 path does, unpaced). Every
    // drawing is a file, and so is the contact sheet.
    let drawn = counts["rendered"].as_u64().unwrap() as usize;
    assert!((1..=10).contains(&drawn), "{drawn} frames drawn");
    let pngs = std::fs::read_dir(&frames).unwrap().count();
    assert_eq!(pngs, drawn + 1, "each drawn frame plus the contact sheet");
    assert!(frames.join("contact-sheet.png").is_file());
}

#[test]
fn a_corrupt_or_short_frame_mid_stream_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    for (i, frame) in demo_frames(40).iter().enumerate() {
        let path = dir.path().join(format!("{i:04}.png"));
        match i {
            10 => std::fs::write(&path, b"\x89PNG\r\n\x1a\n not a picture").unwrap(),
            20 => image::GrayImage::new(50, 50).save(&path).unwrap(),
            _ => image::GrayImage::from_raw(
                frame.width as u32,
                frame.height as u32,
                frame.pixels.clone(),
            )
            .unwrap()
            .save(&path)
            .unwrap(),
        }
    }
    let report = dir.path().join("r.json");
    let output = pleura()
        .arg("run")
        .arg(format!("--source=dir:{}", dir.path().display()))
        .args(["--display", "none", "--no-pace"])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("0010.png"),
        "the corrupt frame is named: {stderr}"
    );
    let r = read_json(&report);
    assert_eq!(r["frames"]["corrupt"], 1);
    assert_eq!(r["frames"]["rejected"], 1, "the 50×50 frame");
    assert_eq!(r["frames"]["scored"], 38);
    let clip = &r["clips"][0];
    let counted = clip["frames"].as_u64().unwrap();
    let provisional = clip["provisional_frames"].as_u64().unwrap();
    assert!((38 - provisional..=38).contains(&counted), "{clip}");
}

#[test]
fn a_source_that_dies_mid_stream_is_reported_and_outputs_are_flushed() {
    let mut steps: VecDeque<_> = demo_frames(40).into_iter().map(Ok).collect();
    steps.push_back(Err(SourceError::Io {
        path: PathBuf::from("/dev/video9"),
        cause: std::io::Error::from_raw_os_error(19),
    }));
    steps.extend(demo_frames(5).into_iter().map(Ok));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("f.jsonl");
    let report = play(
        Scripted { steps, rate: None },
        Box::new(NoDisplay),
        Some(&log),
    );
    match &report.end {
        EndReason::SourceFailed { message } => {
            assert!(message.contains("/dev/video9"), "{message}")
        }
        other => panic!("ended with {other:?}"),
    }
    assert_eq!(
        report.frames.captured, 40,
        "nothing is read after the failure"
    );
    assert_eq!(report.frames.scored + report.frames.dropped, 40);
    assert_eq!(
        line_count(&log),
        report.frames.scored as usize,
        "every scored frame is logged"
    );
    // Every scored frame reaches the clip: counted in its score, or scored
    // on a provisional sector that the lock then disagreed with (which
    // frames are scored, and so how many are provisional, depends on the
    // machine's speed: a live source's frames are dropped while the
    // scorer is busy).
    let clip = &report.clips[0];
    let (counted, provisional) = (clip.frames as u64, clip.provisional_frames as u64);
    assert!(
        counted <= report.frames.scored && report.frames.scored <= counted + provisional,
        "{} scored, {counted} counted, {provisional} provisional",
        report.frames.scored
    );
}

/// A source whose device is lost for a while: frames, then no-signal
/// reports (each after a short wait, like a reconnect attempt), then
/// frames again.
struct LostAndBack {
    script: Scripted,
    /// How long each no-signal report takes.
    wait: Duration,
}

impl FrameSource for LostAndBack {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        let next = self.script.next_frame();
        if matches!(&next, Err(e) if e.is_signal_loss()) {
            std::thread::sleep(self.wait);
        }
        next
    }

    fn clip_name(&self) -> &str {
        "grabber"
    }

    /// Played as a recording, so that the unpaced run loses no frame and
    /// the counts are exact.
    fn frame_rate(&self) -> Option<f64> {
        Some(25.0)
    }
}

#[test]
fn a_grabber_that_loses_its_signal_is_waited_for_and_the_run_goes_on() {
    let mut steps: VecDeque<_> = demo_frames(40).into_iter().map(Ok).collect();
    for _ in 0..6 {
        steps.push_back(Err(SourceError::NoSignal {
            path: PathBuf::from("/dev/video0"),
            reason: "the grabber was unplugged".into(),
        }));
    }
    steps.extend(demo_frames(20).into_iter().map(Ok));
    let idle = Arc::new(std::sync::Mutex::new(Vec::new()));
    let model = model();
    let classes = model.meta().seg_classes.clone();
    // Six reports of at least 200 ms: a gap of 1.2 s, and long against
    // scoring a frame (under emulation a frame takes about a hundred times
    // as long, and the frames still queued when the signal goes are scored
    // during it).
    let wait = (3 * scoring_time(&model)).max(Duration::from_millis(200));
    let stages = Stages {
        source: Box::new(LostAndBack {
            script: Scripted { steps, rate: None },
            wait,
        }),
        model: &model,
        renderer: Box::new(TestDisplay {
            idle: Some(idle.clone()),
            ..TestDisplay::default()
        }),
        recorder: Recorder::new(classes, None),
        session: &mut Session::default(),
        inputs: crossbeam_channel::never(),
        heartbeat: None,
    };
    let report = run(stages, &options(false), "v4l:/dev/video0", "shipped");
    assert_eq!(report.end, EndReason::EndOfStream);
    assert_eq!(report.frames.no_signal, 6);
    assert_eq!(
        report.frames.captured, 60,
        "frames after the gap are captured"
    );
    assert_eq!(report.frames.scored, 60, "{:?}", report.frames);
    let idle = idle.lock().unwrap();
    assert!(
        idle.iter().any(|gap| *gap >= Duration::from_millis(750)),
        "the display heard of the 1.2 s gap: {idle:?}"
    );
}

#[test]
fn a_truncated_clip_is_scored_as_far_as_it_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    // The first half of an MPEG-TS: its decoder stops half-way.
    let ts = dir.path().join("cut.ts");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(common::repo("tests/demo/healthy-score0.mp4"))
        .args(["-c", "copy"])
        .arg(&ts)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&ts).unwrap();
    std::fs::write(&ts, &bytes[..bytes.len() / 2]).unwrap();
    let output = pleura()
        .arg("run")
        .arg(format!("--source=file:{}", ts.display()))
        .args(["--display", "none", "--no-pace", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    // A truncated stream is decoded as far as it goes: a shorter clip.
    assert!(output.status.success());
    let r = read_json(&report);
    let scored = r["frames"]["scored"].as_u64().unwrap();
    assert!(scored > 0 && scored < 100, "scored {scored}");
}

#[test]
fn a_missing_clip_or_model_a_bad_spec_or_a_wrong_roi_is_named() {
    let cases: [(&[&str], &str); 7] = [
        (&["--source", "file:/no/such/clip.mp4"], "/no/such/clip.mp4"),
        (
            &["--source", "v4l:/dev/video-pleura-none"],
            "/dev/video-pleura-none",
        ),
        (&["--source", "rtsp://camera"], "unknown source"),
        (&["--model", "/no/such/model.gguf"], "/no/such/model.gguf"),
        (
            &[
                "--source",
                "file:tests/demo/healthy-score0.mp4",
                "--no-pace",
                "--roi",
                "900,900,100,100",
            ],
            "roi_outside_frame 100",
        ),
        (
            &[
                "--source",
                "file:tests/demo/healthy-score0.mp4",
                "--no-pace",
                "--roi",
                "100,0,200,200",
            ],
            "check --roi",
        ),
        (&["--roi", "0,0,1,1"], "at least 64 px on each side"),
    ];
    for (args, expected) in cases {
        let output = pleura()
            .arg("run")
            .args(["--display", "none"])
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// What scoring one frame takes `model` on this machine (the best of
/// three).
fn scoring_time(model: &LusNet) -> Duration {
    let frame = vec![128u8; model.meta().input_len()];
    (0..3)
        .map(|_| {
            let start = Instant::now();
            model.predict(&[frame.as_slice()]).unwrap();
            start.elapsed()
        })
        .min()
        .unwrap()
}

/// A per-frame delay much longer than scoring: ten times what scoring a
/// frame takes on this machine, and at least 30 ms. (A fixed 30 ms is
/// faster than the scorer under emulation or on a small board.) Ten, not
/// less: in the pipeline a frame also waits for its decoding, its sector
/// and the test running beside it, and under qemu that made a frame take
/// 2.4 times the scoring time alone; with four times, the display kept up
/// with 60 of 100 frames.
fn slow_display_delay() -> Duration {
    (10 * scoring_time(&model())).max(Duration::from_millis(30))
}

#[test]
fn a_slow_display_shows_the_newest_frames_but_every_frame_is_recorded() {
    let steps = demo_frames(100).into_iter().map(Ok).collect();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("f.jsonl");
    let delay = slow_display_delay();
    let report = play(
        Scripted {
            steps,
            rate: Some(25.0),
        },
        Box::new(TestDisplay {
            delay,
            ..TestDisplay::default()
        }),
        Some(&log),
    );
    assert_eq!(report.end, EndReason::EndOfStream);
    assert_eq!(
        report.frames.scored, 100,
        "a recording played unpaced loses nothing"
    );
    assert_eq!(line_count(&log), 100);
    assert!(
        report.frames.rendered < 60,
        "the display skipped to the newest frames: {} shown, {delay:?} each",
        report.frames.rendered
    );
}

#[test]
fn a_display_that_panics_is_switched_off_and_recording_goes_on() {
    let steps = demo_frames(60).into_iter().map(Ok).collect();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("f.jsonl");
    let source = Scripted {
        steps,
        rate: Some(25.0),
    };
    // A display backend with a bug.
    let buggy = TestDisplay {
        panic_from: Some(20),
        ..TestDisplay::default()
    };
    let report = play(source, Box::new(buggy), Some(&log));
    assert_eq!(report.end, EndReason::EndOfStream);
    assert_eq!(report.frames.scored, 60, "{:?}", report.frames);
    assert_eq!(line_count(&log), 60);
    assert!(report.frames.rendered < 60);
    assert!(
        report.output_errors.iter().any(|e| e.contains("panicked")),
        "{:?}",
        report.output_errors
    );
}

#[test]
fn a_zone_counts_every_frame_its_clip_counts_even_when_the_display_drops_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (mut session, _) = blue_exam(dir.path());
    session.command(Command::Start);
    let source = Scripted {
        steps: demo_frames(80).into_iter().map(Ok).collect(),
        rate: Some(25.0),
    };
    let slow = TestDisplay {
        delay: slow_display_delay(),
        ..TestDisplay::default()
    };
    let report = play_exam(source, Box::new(slow), None, &mut session, None);
    assert_eq!(report.frames.scored, 80, "{:?}", report.frames);
    // The display cannot keep up (each frame takes it ten times what
    // scoring one takes), so it skips frames; how many depends on the
    // machine's load, so only that it skipped is asserted.
    assert!(
        report.frames.rendered < report.frames.scored,
        "the display skipped frames: {} shown",
        report.frames.rendered
    );
    let zone = session.zone().expect("the zone saw frames");
    let clip = &report.clips[0];
    assert_eq!(
        zone.frames, clip.frames,
        "the zone counts every frame its clip counts"
    );
    assert_eq!(
        (zone.score.score, zone.score.confidence),
        (clip.score, clip.confidence),
        "the zone's score is its clip's"
    );
}

#[test]
fn exam_keys_and_the_journal_go_on_after_the_display_has_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut session, journal) = blue_exam(dir.path());
    let source = Scripted {
        steps: demo_frames(100).into_iter().map(Ok).collect(),
        rate: Some(25.0),
    };
    let broken = TestDisplay {
        panic_from: Some(0),
        ..TestDisplay::default()
    };
    // Every key comes after the display broke on the first frame it got.
    let clinician = Clinician {
        script: [
            (1, Command::Start),
            (1, Command::Record),
            (1, Command::NextZone),
            (1, Command::Record),
            (1, Command::Finish),
        ]
        .into(),
        ..Clinician::default()
    };
    let report = play_exam(
        source,
        Box::new(broken),
        None,
        &mut session,
        Some(clinician),
    );
    assert_eq!(report.frames.scored, 100, "{:?}", report.frames);
    assert_eq!(report.frames.rendered, 0);
    assert!(
        report.output_errors.iter().any(|e| e.contains("panicked")),
        "{:?}",
        report.output_errors
    );
    let exam = Journal::read(&journal)
        .unwrap()
        .expect("an exam was journaled");
    assert!(exam.finished, "{exam:?}");
    assert_eq!(exam.recorded(), 2, "{exam:?}");
    assert!(exam.zones[..2].iter().flatten().all(|zone| zone.manual));
    assert_eq!(
        Some(&exam),
        session.exam(),
        "the journal holds what was shown"
    );
}

#[test]
fn sigterm_stops_a_live_run_and_flushes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let (report, log) = (dir.path().join("r.json"), dir.path().join("f.jsonl"));
    let mut child = pleura()
        .args(["run", "--source", "demo", "--display", "none"])
        .arg("--report")
        .arg(&report)
        .arg("--log")
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Stop it mid-stream: once it has scored a few frames (the frame log is
    // flushed line by line), however slowly it started. Under an emulator a
    // frame takes far longer, so a fixed delay would prove nothing there.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&log).map_or(0, |text| text.matches('\n').count()) <= 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "no 11 frames scored within 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended by itself"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "a stop request is a clean exit: {status}");
    let r = read_json(&report);
    assert_eq!(r["end"]["kind"], "interrupted");
    let scored = r["frames"]["scored"].as_u64().unwrap();
    assert!(scored > 10, "scored {scored} frames before the stop");
    assert!(scored < 400, "the demo (500 frames, 20 s) was cut short");
    assert_eq!(line_count(&log) as u64, scored);
}

#[test]
fn the_live_pipeline_feeds_a_2_5d_model_the_frames_the_trainer_saw() {
    // Every frame of a clip, live and unpaced, with the sector the export
    // finds: each frame's probabilities equal those of the trainer's path
    // (`pleura dataset export --history-step`, the same code as `eval`), so
    // the live history holds the same earlier frames.
    let model = LusNet::load(&common::shipped_model(), Precision::Int8).unwrap();
    let meta = model.meta();
    assert!(meta.history_step > 0, "the shipped model is 2.5D");
    let clip = common::repo("tests/demo/covid-score2.mp4");
    let prepared =
        pleura::eval::prepare_clip(&clip, meta.input_size, None, meta.history_step).unwrap();
    let expected = pleura::eval::predict_clip(&model, &prepared).unwrap();
    let roi = prepared.roi.expect("a sector");
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("r.json");
    let output = pleura()
        .args(["run", "--source", "file:tests/demo/covid-score2.mp4"])
        .args(["--no-pace", "--display", "none", "--precision", "int8"])
        .arg(format!("--roi={},{},{},{}", roi.x, roi.y, roi.w, roi.h))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let series = read_json(&report)["clips"][0]["series"].clone();
    let series = series.as_array().unwrap();
    assert_eq!(series.len(), expected.len());
    for (i, (live, exported)) in series.iter().zip(&expected).enumerate() {
        let live: Vec<f64> = serde_json::from_value(live["probs"].clone()).unwrap();
        for (a, b) in live.iter().zip(exported.score_probs) {
            assert!(
                (a - f64::from(b)).abs() < 1e-4,
                "frame {i}: {live:?} vs {:?}",
                exported.score_probs
            );
        }
    }
}
