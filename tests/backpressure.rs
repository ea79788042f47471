//! A live source much faster than inference: frames are dropped and
//! counted, never queued, so memory stays flat. (Its own test binary, so
//! that no other test disturbs the memory reading.)

mod common;

use pleura::display::NoDisplay;
use pleura::exam::Session;
use pleura::frame::GrayFrame;
use pleura::model::{LusNet, Precision};
use pleura::pipeline::{RunOptions, Stages, run};
use pleura::preprocess::SectorMode;
use pleura::record::{EndReason, Recorder};
use pleura::source::{FrameSource, SourceError};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

const FRAMES: u64 = 3000;
const SIZE: (usize, usize) = (640, 480);

/// Resident memory of this process, in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A "grabber" that delivers frames as fast as it can, and notes the
/// memory after 300 frames and after the last one.
struct FloodingGrabber {
    next: u64,
    rss: Arc<Mutex<Vec<u64>>>,
}

impl FrameSource for FloodingGrabber {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        if self.next == 300 || self.next == FRAMES {
            self.rss.lock().unwrap().push(rss_kb());
        }
        if self.next == FRAMES {
            return Ok(None);
        }
        let t = self.next as usize;
        self.next += 1;
        let pixels = (0..SIZE.0 * SIZE.1)
            .map(|i| ((i % SIZE.0) * 7 + (i / SIZE.0) * 3 + t * 31) as u8 | 0x20)
            .collect();
        Ok(GrayFrame::new(SIZE.0, SIZE.1, pixels, t as u64))
    }

    fn clip_name(&self) -> &str {
        "grabber"
    }
}

#[test]
fn a_slow_consumer_drops_frames_and_memory_stays_flat() {
    common::init_threads();
    let model = LusNet::load(&common::shipped_model(), Precision::F32).unwrap();
    let rss = Arc::new(Mutex::new(Vec::new()));
    let stages = Stages {
        source: Box::new(FloodingGrabber {
            next: 0,
            rss: rss.clone(),
        }),
        model: &model,
        renderer: Box::new(NoDisplay),
        recorder: Recorder::new(model.meta().seg_classes.clone(), None),
        session: &mut Session::default(),
        inputs: crossbeam_channel::never(),
        heartbeat: None,
    };
    let options = RunOptions {
        pace: true,
        sector: SectorMode::Auto,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let report = run(stages, &options, "grabber", "shipped");
    assert_eq!(report.end, EndReason::EndOfStream);
    let f = report.frames;
    assert_eq!(f.captured, FRAMES);
    assert!(f.dropped > FRAMES / 2, "inference cannot keep up: {f:?}");
    assert_eq!(
        f.captured,
        f.scored + f.dropped + f.rejected,
        "every frame is accounted for"
    );
    let rss = rss.lock().unwrap();
    let growth_mb = (rss[1] as f64 - rss[0] as f64) / 1024.0;
    // Queueing the dropped frames would take 300 KB each: hundreds of MB.
    assert!(
        growth_mb < 24.0,
        "memory grew by {growth_mb:.1} MB over {} dropped frames",
        f.dropped
    );
    eprintln!("{f:?}, memory growth {growth_mb:.1} MB");
}
