//! What a run leaves behind: the run report (`--report OUT.json`), the
//! frame log (`--log OUT.jsonl`, one line per scored frame) and the
//! latency statistics of every stage.
//!
//! The frame log is written and flushed line by line, so a killed process
//! loses at most the frame in flight; the report is written whole, through
//! a temporary file and a rename, so a reader never sees half of one.
//! Memory stays bounded however long a run lasts: latencies go into fixed
//! histograms, and each clip's per-frame series stops growing at
//! [`MAX_SERIES_FRAMES`].

use crate::atomic_write::{Durability, write_atomically};
use crate::frame::GrayFrame;
use crate::model::SCORE_CLASSES;
use crate::model::heads;
use crate::preprocess::Roi;
use crate::preprocess::quality::RejectedFrame;
use crate::scoring::{ScoreUpdate, ScoredFrame};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames kept in a clip's per-frame series (an hour at 25 fps); the frame
/// log has them all.
pub const MAX_SERIES_FRAMES: usize = 90_000;

/// Why writing an output failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {cause}")]
pub struct OutputError {
    /// The file.
    pub path: PathBuf,
    /// The operating system's reason.
    pub cause: std::io::Error,
}

/// Latency of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencyStats {
    /// Measurements taken.
    pub count: u64,
    /// Median.
    pub median_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst case.
    pub max_ms: f64,
}

/// A histogram of durations with 2 significant digits, from 1 µs to an hour,
/// in constant memory.
#[derive(Debug, Clone)]
pub struct StageClock(Histogram<u64>);

impl Default for StageClock {
    fn default() -> Self {
        // The bounds are constants that hdrhistogram accepts.
        Self(Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid histogram bounds"))
    }
}

impl StageClock {
    /// Records one duration.
    pub fn record(&mut self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    /// Records the time since `start`.
    pub fn since(&mut self, start: Instant) {
        self.record(start.elapsed());
    }

    /// Median, p99 and maximum.
    pub fn stats(&self) -> LatencyStats {
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencyStats {
            count: self.0.len(),
            median_ms: ms(self.0.value_at_quantile(0.5)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// The stages of the pipeline whose latency is measured.
#[derive(Debug, Clone, Default)]
pub struct StageClocks {
    /// Waiting for the source's next frame (decode or capture).
    pub capture: StageClock,
    /// Sector tracking, crop and resize.
    pub preprocess: StageClock,
    /// The network.
    pub inference: StageClock,
    /// Live score, clip score, stability.
    pub scoring: StageClock,
    /// Drawing and writing one displayed frame.
    pub render: StageClock,
    /// From capture to the end of the output stage.
    pub end_to_end: StageClock,
}

impl StageClocks {
    /// Median and p99 of every stage, by name.
    pub fn stats(&self) -> BTreeMap<&'static str, LatencyStats> {
        BTreeMap::from([
            ("capture", self.capture.stats()),
            ("preprocess", self.preprocess.stats()),
            ("inference", self.inference.stats()),
            ("scoring", self.scoring.stats()),
            ("render", self.render.stats()),
            ("end_to_end", self.end_to_end.stats()),
        ])
    }
}

/// How many frames went where. Every captured frame is scored, dropped or
/// rejected; corrupt frames never became frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FrameCounts {
    /// Frames the source delivered.
    pub captured: u64,
    /// Frames the source could not decode (skipped).
    pub corrupt: u64,
    /// No-signal reports of a live device: the loss (timeout, unplug) and
    /// each attempt to get the device back.
    pub no_signal: u64,
    /// Frames dropped because inference was busy (newest frame wins).
    pub dropped: u64,
    /// Frames that got no score: not a scan (see
    /// [`crate::preprocess::quality`]), or of the wrong size. By reason in
    /// [`RunReport::rejected`].
    pub rejected: u64,
    /// Frames scored by the network.
    pub scored: u64,
    /// Frames drawn by the display.
    pub rendered: u64,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// The source had no more frames.
    EndOfStream,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The source failed; everything scored until then is kept.
    SourceFailed {
        /// The source's error.
        message: String,
    },
    /// The network failed on a frame.
    ModelFailed {
        /// The model's error.
        message: String,
    },
    /// The output stage stopped taking frames.
    OutputFailed {
        /// What stopped it.
        message: String,
    },
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::EndOfStream => write!(f, "end of stream"),
            EndReason::Interrupted => write!(f, "interrupted"),
            EndReason::SourceFailed { message } => write!(f, "source failed: {message}"),
            EndReason::ModelFailed { message } => write!(f, "model failed: {message}"),
            EndReason::OutputFailed { message } => write!(f, "output failed: {message}"),
        }
    }
}

/// One scored frame, as kept in the report's series and the frame log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FrameRecord {
    /// Position of the frame in its clip.
    pub seq: u64,
    /// Milliseconds since the run started, when the frame was recorded.
    pub t_ms: f64,
    /// Milliseconds from the frame's capture (or decode) to its record.
    pub latency_ms: f64,
    /// The frame's own score.
    pub score: u8,
    /// The frame's score probabilities.
    pub probs: [f32; SCORE_CLASSES],
    /// The smoothed live score.
    pub live_score: u8,
    /// The clip score so far.
    pub clip_score: u8,
    /// Whether the clip score is stable.
    pub stable: bool,
    /// Whether the frame was cropped to a provisional sector (see
    /// [`crate::preprocess::SectorTracker`]).
    pub provisional: bool,
    /// Fraction of the sector covered by each pathological class.
    pub areas: ClassAreas,
}

/// Most pathological classes a frame record holds (LusNet has two).
pub const MAX_AREA_CLASSES: usize = 4;

/// The fraction of the sector each pathological class covers in one frame,
/// written as a `{"class": fraction}` map. The names are shared by every
/// record and the values kept inline, so a record allocates nothing: an
/// hour of frames in the report's series costs under 8 MB.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassAreas {
    names: Arc<[String]>,
    values: [f32; MAX_AREA_CLASSES],
}

impl ClassAreas {
    /// Each class name with its fraction.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().copied())
    }
}

impl serde::Serialize for ClassAreas {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// The result for one clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipReport {
    /// The clip's name.
    pub name: String,
    /// The sector of its last frame (the locked one, once the clip's is
    /// locked).
    pub sector: Roi,
    /// Frames counted in the clip score.
    pub frames: usize,
    /// Frames scored on a provisional sector, before the clip's was locked
    /// (counted in `frames` only if their sector agreed with the lock).
    pub provisional_frames: usize,
    /// Milliseconds from the capture of the clip's first frame to its
    /// first score.
    pub first_score_ms: f64,
    /// Clip score 0–3.
    pub score: u8,
    /// Probability of that score.
    pub confidence: f32,
    /// Probability of each score (see [`crate::scoring`]).
    pub probs: [f32; SCORE_CLASSES],
    /// Whether the clip score had stopped changing at the end.
    pub stable: bool,
    /// Mean fraction of the sector covered by each pathological class.
    pub areas: BTreeMap<String, f32>,
    /// Probability of each finding, by name (models with the v3 heads).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<String, f32>,
    /// One record per scored frame, up to [`MAX_SERIES_FRAMES`].
    pub series: Vec<FrameRecord>,
    /// Whether the series was cut at [`MAX_SERIES_FRAMES`].
    pub series_truncated: bool,
    /// Frames of the clip that got no score, by reason (e.g. `frozen`).
    pub rejected: BTreeMap<String, u64>,
}

impl ClipReport {
    /// Takes the clip's scores after the frames counted so far.
    fn count(&mut self, scores: &ScoreUpdate, areas: BTreeMap<String, f32>) {
        self.frames = scores.clip.frames;
        self.score = scores.clip.score;
        self.confidence = scores.clip.confidence;
        self.probs = scores.clip.probs;
        self.stable = scores.stable;
        self.areas = areas;
        self.findings = scores.findings.map(heads::named).unwrap_or_default();
    }
}

/// A clip none of whose frames got a score: it has no score at all.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnscoredClip {
    /// The clip's name.
    pub name: String,
    /// Its frames, by the reason they were rejected (e.g. `no_image`).
    pub rejected: BTreeMap<String, u64>,
}

/// What a [`Recorder`] kept, once the run is over.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The clips with at least one scored frame, in playing order.
    pub clips: Vec<ClipReport>,
    /// The clips without any.
    pub unscored: Vec<UnscoredClip>,
    /// Outputs that failed during the run.
    pub errors: Vec<String>,
}

/// Everything a run measured (`--report`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// The `--source` that was played.
    pub source: String,
    /// The model file.
    pub model: String,
    /// The inference path: `int8`, `f32` or `q8`.
    pub precision: &'static str,
    /// Why the run ended.
    pub end: EndReason,
    /// One entry per scored clip, in playing order.
    pub clips: Vec<ClipReport>,
    /// Clips of which no frame could be scored, with the reasons.
    pub unscored: Vec<UnscoredClip>,
    /// Where the frames went.
    pub frames: FrameCounts,
    /// Frames that got no score, by reason (`no_image`, `frozen`, …).
    pub rejected: BTreeMap<String, u64>,
    /// Per-stage latency: median, p99 and maximum in milliseconds.
    pub latency: BTreeMap<&'static str, LatencyStats>,
    /// Frames scored per second of wall time.
    pub fps: f64,
    /// Wall time of the run, in seconds.
    pub wall_s: f64,
    /// Outputs that failed during the run (their data up to then is kept).
    pub output_errors: Vec<String>,
}

impl RunReport {
    /// Checks, before a run, that its report can be written to `path`: not
    /// a folder, and its temporary file can be created beside it. A run
    /// whose report cannot be kept is refused before it starts, not found
    /// out after it ends.
    pub fn check_destination(path: &Path) -> Result<(), OutputError> {
        let error = |cause| OutputError {
            path: path.to_path_buf(),
            cause,
        };
        if path.is_dir() {
            return Err(error(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a folder, not a file",
            )));
        }
        let mut probe = path.as_os_str().to_owned();
        probe.push(".partial");
        File::create(&probe).map_err(error)?;
        std::fs::remove_file(&probe).map_err(error)
    }

    /// Writes the report as JSON, atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), OutputError> {
        let error = |cause| OutputError {
            path: path.to_path_buf(),
            cause,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| error(e.into()))?;
        write_atomically(path, Durability::Synced, |out| out.write_all(&json)).map_err(error)
    }
}

/// The reason given for the frames of a clip scored on a provisional sector
/// that the locked sector did not agree with, when no frame of the clip
/// counted.
pub const PROVISIONAL_DISAGREED: &str = "provisional_sector_disagreed";

/// Keeps the per-clip results and writes the frame log.
pub struct Recorder {
    classes: Vec<String>,
    /// The classes after background, shared by every frame record.
    pathological: Arc<[String]>,
    /// Whether each clip keeps its per-frame series.
    keep_series: bool,
    clips: Vec<ClipReport>,
    /// Rejected frames of each clip by reason, in playing order.
    rejected: Vec<(Arc<str>, BTreeMap<&'static str, u64>)>,
    log: Option<FrameLog>,
    errors: Vec<String>,
    started: Instant,
    /// The clip playing and when its first frame seen was captured.
    first_capture: Option<(Arc<str>, Instant)>,
}

impl Recorder {
    /// A recorder for a model with these segmentation classes (background
    /// first), writing the frame log to `log` when given.
    pub fn new(classes: Vec<String>, log: Option<FrameLog>) -> Self {
        let pathological = classes
            .iter()
            .skip(1)
            .take(MAX_AREA_CLASSES)
            .cloned()
            .collect();
        Self {
            classes,
            pathological,
            keep_series: true,
            clips: Vec::new(),
            rejected: Vec::new(),
            log,
            errors: Vec::new(),
            started: Instant::now(),
            first_capture: None,
        }
    }

    /// A recorder that keeps no per-frame series in the clips: for a run
    /// whose report is never written (a unit at the bedside), so that its
    /// memory stays flat however long it runs. The frame log still gets
    /// every frame.
    pub fn without_series(mut self) -> Self {
        self.keep_series = false;
        self
    }

    /// Counts a frame that got no score against its clip.
    pub fn reject(&mut self, rejected: &RejectedFrame) {
        self.saw(&rejected.clip, &rejected.frame);
        if self
            .rejected
            .last()
            .is_none_or(|(clip, _)| **clip != *rejected.clip)
        {
            self.rejected
                .push((Arc::clone(&rejected.clip), BTreeMap::new()));
        }
        if let Some((_, reasons)) = self.rejected.last_mut() {
            *reasons.entry(rejected.reason.key()).or_default() += 1;
        }
    }

    /// Records one scored frame. A failing frame log is reported once and
    /// closed; the run goes on.
    pub fn record(&mut self, scored: &ScoredFrame) {
        let first_capture = self.saw(&scored.clip, &scored.frame);
        let frame_areas = ClassAreas {
            names: Arc::clone(&self.pathological),
            values: std::array::from_fn(|i| match i < self.pathological.len() {
                true => scored.prediction.class_fraction(i + 1),
                false => 0.0,
            }),
        };
        let record = FrameRecord {
            seq: scored.frame.seq,
            t_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            latency_ms: scored.frame.captured.elapsed().as_secs_f64() * 1000.0,
            score: scored.prediction.score(),
            probs: scored.prediction.score_probs,
            live_score: scored.scores.live_score,
            clip_score: scored.scores.clip.score,
            stable: scored.scores.stable,
            provisional: scored.provisional,
            areas: frame_areas,
        };
        if let Some(log) = &mut self.log
            && let Err(e) = log.append(&scored.clip, &record)
        {
            log::error!("frame log stopped: {e}");
            self.errors.push(format!("frame log: {e}"));
            self.log = None;
        }
        let clip_areas = self.areas(&scored.scores.class_fractions);
        let is_new_clip = self.clips.last().is_none_or(|c| *c.name != *scored.clip);
        if is_new_clip {
            self.clips.push(ClipReport {
                name: scored.clip.to_string(),
                sector: scored.sector,
                frames: 0,
                provisional_frames: 0,
                first_score_ms: first_capture.elapsed().as_secs_f64() * 1000.0,
                score: 0,
                confidence: 0.0,
                probs: [0.0; SCORE_CLASSES],
                stable: false,
                areas: BTreeMap::new(),
                findings: BTreeMap::new(),
                series: Vec::new(),
                series_truncated: false,
                rejected: BTreeMap::new(),
            });
        }
        let Some(clip) = self.clips.last_mut() else {
            return;
        };
        clip.sector = scored.sector;
        if scored.provisional {
            // Its clip score is tentative until the sector is locked.
            clip.provisional_frames += 1;
        } else {
            clip.count(&scored.scores, clip_areas);
        }
        if !self.keep_series {
            return;
        }
        if clip.series.len() < MAX_SERIES_FRAMES {
            clip.series.push(record);
        } else {
            clip.series_truncated = true;
        }
    }

    /// The clip's sector was locked at `locked` after frames were scored
    /// on a provisional one: `scores` counts those that agreed with it.
    pub fn settle(&mut self, clip: &str, locked: Option<Roi>, scores: &ScoreUpdate) {
        let areas = self.areas(&scores.class_fractions);
        if let Some(report) = self.clips.last_mut().filter(|c| c.name == clip) {
            report.count(scores, areas);
            if let Some(locked) = locked {
                report.sector = locked;
            }
        }
    }

    /// The area of each pathological class, by name.
    fn areas(&self, fractions: &[f32]) -> BTreeMap<String, f32> {
        self.classes
            .iter()
            .zip(fractions)
            .skip(1)
            .map(|(name, &f)| (name.clone(), f))
            .collect()
    }

    /// Notes a frame of `clip` reaching the record; returns when the
    /// clip's first frame seen was captured.
    fn saw(&mut self, clip: &Arc<str>, frame: &GrayFrame) -> Instant {
        match &self.first_capture {
            Some((playing, captured)) if **playing == **clip => *captured,
            _ => {
                self.first_capture = Some((Arc::clone(clip), frame.captured));
                frame.captured
            }
        }
    }

    /// Closes the frame log (flushed and synced) and hands back the clips
    /// and any output errors.
    pub fn finish(mut self) -> Recorded {
        if let Some(log) = self.log.take()
            && let Err(e) = log.close()
        {
            self.errors.push(format!("frame log: {e}"));
        }
        let mut unscored = Vec::new();
        // A clip whose provisional frames all disagreed with its locked
        // sector, or that had none, has no score.
        let (clips, uncounted): (Vec<ClipReport>, Vec<ClipReport>) =
            self.clips.into_iter().partition(|c| c.frames > 0);
        self.clips = clips;
        for clip in uncounted {
            let mut rejected = clip.rejected;
            rejected.insert(PROVISIONAL_DISAGREED.into(), clip.provisional_frames as u64);
            unscored.push(UnscoredClip {
                name: clip.name,
                rejected,
            });
        }
        for (name, reasons) in self.rejected {
            let reasons = reasons
                .into_iter()
                .map(|(reason, n)| (reason.to_string(), n));
            let scored = self.clips.iter_mut().rev().find(|c| *c.name == *name);
            let counts = match scored {
                Some(clip) => Some(&mut clip.rejected),
                None => unscored
                    .iter_mut()
                    .rev()
                    .find(|c| *c.name == *name)
                    .map(|c| &mut c.rejected),
            };
            match counts {
                Some(counts) => {
                    for (reason, n) in reasons {
                        *counts.entry(reason).or_default() += n;
                    }
                }
                None => unscored.push(UnscoredClip {
                    name: name.to_string(),
                    rejected: reasons.collect(),
                }),
            }
        }
        Recorded {
            clips: self.clips,
            unscored,
            errors: self.errors,
        }
    }
}

/// The frame log: one JSON object per line, flushed after every line.
pub struct FrameLog {
    path: PathBuf,
    out: BufWriter<File>,
}

#[derive(serde::Serialize)]
struct LogLine<'a> {
    clip: &'a str,
    #[serde(flatten)]
    frame: &'a FrameRecord,
}

impl FrameLog {
    /// Creates (or truncates) the log file.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let file = File::create(path).map_err(|cause| OutputError {
            path: path.to_path_buf(),
            cause,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    fn append(&mut self, clip: &str, frame: &FrameRecord) -> Result<(), OutputError> {
        let line = LogLine { clip, frame };
        serde_json::to_writer(&mut self.out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush())
            .map_err(|cause| OutputError {
                path: self.path.clone(),
                cause,
            })
    }

    fn close(mut self) -> Result<(), OutputError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all())
            .map_err(|cause| OutputError {
                path: self.path.clone(),
                cause,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_clock_reports_median_and_p99() {
        let mut clock = StageClock::default();
        for ms in 1..=100 {
            clock.record(Duration::from_millis(ms));
        }
        let stats = clock.stats();
        assert_eq!(stats.count, 100);
        assert!((stats.median_ms - 50.0).abs() < 1.0, "{stats:?}");
        assert!((stats.p99_ms - 99.0).abs() < 1.0, "{stats:?}");
        assert!((stats.max_ms - 100.0).abs() < 1.0, "{stats:?}");
    }

    /// Frame `seq` of `clip`, scored on `sector` by `tracker`.
    fn scored(
        clip: &Arc<str>,
        seq: u64,
        sector: Roi,
        provisional: bool,
        tracker: &mut crate::scoring::ClipTracker,
    ) -> ScoredFrame {
        let prediction = crate::model::FramePrediction {
            score_probs: [0.1, 0.7, 0.1, 0.1],
            seg_size: 2,
            seg_labels: vec![0; 4],
            heads: None,
        };
        let scores = if provisional {
            tracker.update_provisional(&prediction, sector)
        } else {
            tracker.update(&prediction)
        };
        ScoredFrame {
            clip: Arc::clone(clip),
            frame: GrayFrame::new(4, 4, vec![0; 16], seq).unwrap(),
            sector,
            provisional,
            prediction,
            scores,
        }
    }

    #[test]
    fn a_clip_takes_its_score_from_the_frames_it_counts_and_none_without_any() {
        let classes = vec!["background".to_string(), "b_line".to_string()];
        let sector = Roi {
            x: 0,
            y: 0,
            w: 100,
            h: 100,
        };
        let other = Roi { w: 50, ..sector };
        let mut recorder = Recorder::new(classes, None);

        // Three provisional frames, two of which agree with the lock.
        let agreeing: Arc<str> = Arc::from("agreeing.mp4");
        let mut tracker = crate::scoring::ClipTracker::new(2);
        for (seq, roi) in [(0, other), (1, sector), (2, sector)] {
            recorder.record(&scored(&agreeing, seq, roi, true, &mut tracker));
        }
        let settled = tracker.settle(Some(sector)).unwrap();
        recorder.settle(&agreeing, Some(sector), &settled);
        recorder.record(&scored(&agreeing, 3, sector, false, &mut tracker));

        // A short clip whose provisional frames all disagree with its lock.
        let disagreeing: Arc<str> = Arc::from("disagreeing.mp4");
        let mut tracker = crate::scoring::ClipTracker::new(2);
        recorder.record(&scored(&disagreeing, 0, other, true, &mut tracker));
        let settled = tracker.settle(Some(sector)).unwrap();
        recorder.settle(&disagreeing, Some(sector), &settled);

        let recorded = recorder.finish();
        assert_eq!(recorded.clips.len(), 1);
        let clip = &recorded.clips[0];
        assert_eq!(clip.name, "agreeing.mp4");
        assert_eq!(
            (clip.frames, clip.provisional_frames, clip.score),
            (3, 3, 1)
        );
        assert_eq!(clip.sector, sector);
        assert_eq!(clip.series.len(), 4, "every frame shown is in the series");
        assert!(clip.series[..3].iter().all(|f| f.provisional));
        assert_eq!(
            recorded.unscored,
            vec![UnscoredClip {
                name: "disagreeing.mp4".into(),
                rejected: [(PROVISIONAL_DISAGREED.to_string(), 1)].into(),
            }]
        );
    }

    #[test]
    fn an_empty_clock_reports_zeros() {
        assert_eq!(StageClock::default().stats(), LatencyStats::default());
    }
}
