//! The bedside screens, rendered headless and compared pixel for pixel with
//! committed golden images (`tests/golden/`).
//!
//! The frames come from the phantom, with its exact mask standing in for
//! the segmentation, so the pictures need no model and no video decoder.
//! After an intended change of the screens, regenerate the goldens with
//! `PLEURA_BLESS=1 cargo test --release --test screens` and look at them.

use pleura::display::{Canvas, ScreenKind, ScreenPainter, ScreenState};
use pleura::exam::{Command, Exam, ExamIdentity, Journal, Protocol, ZoneScore};
use std::path::PathBuf;

#[path = "common/display.rs"]
#[allow(dead_code)]
mod fixtures;

const SIZES: [(u32, u32); 2] = [(800, 480), (480, 320)];

fn classes() -> Vec<String> {
    ["background", "b_line", "consolidation"]
        .map(String::from)
        .to_vec()
}

/// A screen state showing phantom frame 12 of a score-2 clip, its mask
/// sampled onto the 32×32 segmentation grid.
fn phantom_state(kind: ScreenKind) -> ScreenState {
    let scored = fixtures::phantom_scored_frames(13, 320, 256)
        .pop()
        .expect("phantom frames");
    let (w, h) = (scored.frame.width, scored.frame.height);
    ScreenState {
        kind,
        pixels: scored.frame.pixels,
        width: w,
        height: h,
        sector: scored.sector,
        seg_labels: scored.prediction.seg_labels,
        seg_size: scored.prediction.seg_size,
        live: (2, 0.71),
        clip: (2, 0.64),
        stable: true,
        provisional: false,
        findings: scored.scores.findings,
        fps: 24.9,
        latency_ms: 38.0,
        recording: true,
        hint: Some("hold: records when stable"),
        alert: None,
        rejection: "",
        handover: None,
        outbox: None,
        worklist: None,
    }
}

/// A 12-zone exam with five zones recorded, the current one being R6.
fn exam_in_progress(finished: bool) -> Exam {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::open(&dir.path().join("journal.jsonl")).expect("journal");
    // An anonymous exam with a fixed accession number, so that the
    // pictures do not change from run to run.
    let mut identity = ExamIdentity::anonymous(1_764_700_000);
    identity.accession = "PL0TEST00000042".into();
    journal.start(Protocol::Zones12, identity).expect("start");
    for (zone, (score, manual)) in [(1, false), (2, false), (0, true), (3, false), (2, false)]
        .into_iter()
        .enumerate()
    {
        if zone > 0 {
            journal
                .command(Command::NextZone, Protocol::Zones12, None)
                .expect("next");
        }
        let result = ZoneScore {
            score,
            confidence: 0.7,
            manual,
            findings: None,
        };
        if manual {
            journal
                .command(Command::Record, Protocol::Zones12, Some(result))
                .expect("record");
        } else {
            journal.record_stable(result).expect("record");
        }
    }
    journal
        .command(Command::NextZone, Protocol::Zones12, None)
        .expect("next");
    if finished {
        journal
            .command(Command::Finish, Protocol::Zones12, None)
            .expect("finish");
    }
    journal.exam().expect("exam").clone()
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.png"))
}

/// Renders one screen at each size and compares it with its golden.
fn check(screen: &str, state: &ScreenState, exam: Option<&Exam>) {
    let mut renderer = ScreenPainter::new();
    for (w, h) in SIZES {
        let mut canvas = Canvas::new(w, h);
        renderer.draw(&mut canvas, state, exam, &classes());
        let name = format!("{screen}-{w}x{h}");
        let path = golden(&name);
        if std::env::var_os("PLEURA_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("golden dir");
            canvas.0.save(&path).expect("write golden");
            continue;
        }
        let expected = image::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless with PLEURA_BLESS=1)", path.display()))
            .to_rgb8();
        if expected != canvas.0 {
            let actual = std::env::temp_dir().join(format!("pleura-{name}-actual.png"));
            let _ = canvas.0.save(&actual);
            let differing = expected
                .pixels()
                .zip(canvas.0.pixels())
                .filter(|(a, b)| a != b)
                .count();
            panic!(
                "{name}: {differing} pixels differ from {} (this run's picture: {})",
                path.display(),
                actual.display()
            );
        }
    }
}

#[test]
fn live_screen_shows_frame_scores_zone_map_and_total() {
    check(
        "live",
        &phantom_state(ScreenKind::Live),
        Some(&exam_in_progress(false)),
    );
}

#[test]
fn frozen_screen_keeps_the_frame_and_says_frozen() {
    check(
        "frozen",
        &phantom_state(ScreenKind::Frozen),
        Some(&exam_in_progress(false)),
    );
}

#[test]
fn no_signal_screen_hides_the_stale_frame() {
    check(
        "no-signal",
        &phantom_state(ScreenKind::NoSignal),
        Some(&exam_in_progress(false)),
    );
}

#[test]
fn summary_screen_lists_every_zone_and_the_total() {
    let exam = exam_in_progress(true);
    assert_eq!(exam.total(), 8);
    check("summary", &phantom_state(ScreenKind::Summary), Some(&exam));
}

#[test]
fn summary_screen_says_the_exam_is_queued_and_what_the_outbox_holds() {
    let exam = exam_in_progress(true);
    let state = ScreenState {
        handover: Some("QUEUED FOR THE HOSPITAL"),
        outbox: Some((1, 3, 1)),
        ..phantom_state(ScreenKind::Summary)
    };
    check("summary-queued", &state, Some(&exam));
}

#[test]
fn a_score_on_a_provisional_sector_is_marked_prelim_until_the_sector_locks() {
    // Issue 21: a new clip is scored from its first frame, on a sector
    // that may still move; its clip score may not count, and says so.
    let provisional = ScreenState {
        stable: false,
        provisional: true,
        ..phantom_state(ScreenKind::Live)
    };
    check("provisional", &provisional, Some(&exam_in_progress(false)));
    let locked = ScreenState {
        provisional: false,
        ..provisional.clone()
    };
    let mut renderer = ScreenPainter::new();
    let mut hint_pixels = |state: &ScreenState| {
        let mut canvas = Canvas::new(800, 480);
        renderer.draw(&mut canvas, state, None, &classes());
        canvas.0.pixels().filter(|p| p.0 == [250, 215, 120]).count()
    };
    assert!(
        hint_pixels(&provisional) > hint_pixels(&locked) + 20,
        "no PRELIM drawn in the hint colour"
    );
}

#[test]
fn low_confidence_is_flagged_on_the_live_screen() {
    let mut state = phantom_state(ScreenKind::Live);
    let mut renderer = ScreenPainter::new();
    let mut confident = Canvas::new(800, 480);
    renderer.draw(&mut confident, &state, None, &classes());
    state.clip.1 = 0.30;
    let mut unsure = Canvas::new(800, 480);
    renderer.draw(&mut unsure, &state, None, &classes());
    // The banner sits at the top of the frame view; amber pixels appear there.
    let amber = |c: &Canvas| c.0.pixels().filter(|p| p.0 == [245, 170, 20]).count();
    assert_eq!(amber(&confident), 0);
    assert!(amber(&unsure) > 100, "no LOW CONFIDENCE banner drawn");
}

#[test]
fn taps_select_zones_record_and_freeze_with_large_targets() {
    use embedded_graphics::prelude::{Point, Size};
    use pleura::display::tap_command;
    let exam = exam_in_progress(false);
    let size = Size::new(800, 480);
    // In the golden picture: L3 is the third cell of the right column, the
    // digit sits at the top of the panel, the frame fills the left.
    assert_eq!(
        tap_command(size, Point::new(720, 315), Some(&exam)),
        Some(Command::SelectZone(8))
    );
    assert_eq!(
        tap_command(size, Point::new(560, 240), Some(&exam)),
        Some(Command::SelectZone(0))
    );
    assert_eq!(
        tap_command(size, Point::new(545, 80), Some(&exam)),
        Some(Command::Record)
    );
    assert_eq!(
        tap_command(size, Point::new(250, 250), Some(&exam)),
        Some(Command::ToggleFreeze)
    );
    assert_eq!(
        tap_command(size, Point::new(250, 250), None),
        Some(Command::ToggleFreeze)
    );
    assert_eq!(
        tap_command(size, Point::new(545, 80), None),
        None,
        "no exam: nothing to record"
    );
    let finished = exam_in_progress(true);
    assert_eq!(
        tap_command(size, Point::new(720, 293), Some(&finished)),
        None
    );
}

#[test]
fn no_image_screen_shows_the_picture_without_any_score_and_says_why() {
    // Issue 16: a blank screen was scored "0, stable". A frame that is not
    // a scan is shown as it is, untinted, with dashes for the scores.
    let mut state = phantom_state(ScreenKind::Live);
    let frame = pleura::frame::GrayFrame::new(320, 256, vec![3; 320 * 256], 0).expect("frame");
    state.show_rejected(&pleura::preprocess::quality::RejectedFrame {
        clip: "blank".into(),
        frame,
        reason: pleura::preprocess::quality::Rejection::NoImage,
    });
    assert_eq!(state.kind, ScreenKind::NoImage);
    assert_eq!(state.rejection, "NO IMAGE - CHECK PROBE");
    check("no-image", &state, Some(&exam_in_progress(false)));
}

/// The worklist screen with two scheduled patients, the second selected.
fn worklist_view() -> pleura::display::WorklistView {
    pleura::display::WorklistView {
        rows: vec![
            "ROE RICHARD  MRN-1  ACC-1  Lung ultrasound".into(),
            "POE PAT  MRN-2  ACC-2  Lung ultrasound".into(),
            "ANONYMOUS EXAM".into(),
        ],
        selected: 1,
        waiting: false,
    }
}

#[test]
fn worklist_screen_lists_the_scheduled_patients_in_large_rows() {
    let state = ScreenState {
        worklist: Some(worklist_view()),
        ..ScreenState::default()
    };
    check("worklist", &state, None);
}

#[test]
fn a_tap_on_a_worklist_row_picks_it() {
    use embedded_graphics::prelude::{Point, Size};
    use pleura::display::worklist_row_at;
    let view = worklist_view();
    let size = Size::new(800, 480);
    // In the golden picture the rows start under the title, 48 px apart:
    // 60-104, 108-152, 156-200.
    let rows: Vec<Option<usize>> = [90, 130, 180, 470]
        .into_iter()
        .map(|y| worklist_row_at(size, Point::new(400, y), &view))
        .collect();
    assert_eq!(rows, [Some(0), Some(1), Some(2), None]);
}
