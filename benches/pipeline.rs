//! Pipeline throughput and per-stage latency on the demo clips, against
//! the model alone on the same frames, in one run (`cargo bench --bench
//! pipeline`). The machine is shared and noisy, so each variant runs
//! several times, interleaved, and the median is reported with its ratio
//! to the model-only baseline.
//!
//! Variants, all unpaced (every frame scored):
//! * `model only`: crop, resize and LusNet on frames already in memory;
//! * `pipeline, frames in memory`: the three threads, no decoding;
//! * `pipeline, demo clips`: the same with ffmpeg decoding the clips;
//! * `pipeline, png every frame`: the same, drawing every frame to PNG.
//!
//! Then one real-time run of the demo clips (paced at 25 fps, as at the
//! bedside) gives the capture-to-output latency and the frames dropped.

use pleura::display::{AnnotatedFrames, NoDisplay, Renderer};
use pleura::exam::Session;
use pleura::frame::GrayFrame;
use pleura::model::{LusNet, Precision};
use pleura::pipeline::{RunOptions, Stages, run};
use pleura::preprocess::{SectorMode, clip_inputs, detect_sector};
use pleura::record::{Recorder, RunReport};
use pleura::source::{FrameSource, SourceError, SourceSpec, decode_clip};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const ROUNDS: usize = 5;

/// Decoded frames replayed from memory, unpaced.
struct InMemory {
    clips: Vec<(String, Vec<GrayFrame>)>,
    clip: usize,
    frame: usize,
}

impl FrameSource for InMemory {
    fn next_frame(&mut self) -> Result<Option<GrayFrame>, SourceError> {
        while let Some((_, frames)) = self.clips.get(self.clip) {
            if let Some(frame) = frames.get(self.frame) {
                self.frame += 1;
                return Ok(Some(frame.clone()));
            }
            self.clip += 1;
            self.frame = 0;
        }
        Ok(None)
    }

    fn clip_name(&self) -> &str {
        self.clips.get(self.clip).map_or("", |(name, _)| name)
    }

    fn frame_rate(&self) -> Option<f64> {
        Some(25.0)
    }
}

fn demo_clips(dir: &Path) -> Vec<(String, Vec<GrayFrame>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/demo")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, decode_clip(p, None).expect("demo clip decodes"))
        })
        .collect()
}

fn model_only(model: &LusNet, clips: &[(String, Vec<GrayFrame>)]) -> f64 {
    let size = model.meta().input_size;
    let started = Instant::now();
    let mut frames = 0;
    for (_, clip) in clips {
        let roi = detect_sector(clip).expect("sector");
        for input in clip_inputs(clip, roi, size, model.meta().history_step) {
            model.predict(&[&input]).expect("predict");
            frames += 1;
        }
    }
    frames as f64 / started.elapsed().as_secs_f64()
}

fn pipeline(
    model: &LusNet,
    source: Box<dyn FrameSource>,
    renderer: Box<dyn Renderer>,
    pace: bool,
) -> RunReport {
    let options = RunOptions {
        pace,
        sector: SectorMode::Auto,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let stages = Stages {
        source,
        model,
        renderer,
        recorder: Recorder::new(model.meta().seg_classes.clone(), None),
        session: &mut Session::default(),
        inputs: crossbeam_channel::never(),
        heartbeat: None,
    };
    run(stages, &options, "bench", "shipped")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    pleura::model::init_threads();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join("tests/demo");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let model = LusNet::load(&root.join("models/lusnet-v3.gguf"), Precision::F32).expect("model");
    let classes = model.meta().seg_classes.clone();
    let clips = demo_clips(&demo);
    let total: usize = clips.iter().map(|(_, f)| f.len()).sum();
    println!(
        "{} demo clips, {total} frames, {ROUNDS} rounds, median of each",
        clips.len()
    );

    let mut baseline = Vec::new();
    let mut memory = Vec::new();
    let mut files = Vec::new();
    let mut png = Vec::new();
    let mut last_files = None;
    let mut last_png = None;
    for _ in 0..ROUNDS {
        baseline.push(model_only(&model, &clips));
        let source = InMemory {
            clips: clips.clone(),
            clip: 0,
            frame: 0,
        };
        memory.push(pipeline(&model, Box::new(source), Box::new(NoDisplay), false).fps);
        let source = SourceSpec::Demo.open(&demo).expect("demo source");
        let report = pipeline(&model, source, Box::new(NoDisplay), false);
        files.push(report.fps);
        last_files = Some(report);
        let source = SourceSpec::Demo.open(&demo).expect("demo source");
        let renderer = Box::new(
            AnnotatedFrames::create(&out.join("png"), &classes, 1)
                .expect("annotated-frame display"),
        );
        let report = pipeline(&model, source, renderer, false);
        png.push(report.fps);
        last_png = Some(report);
    }
    let base = median(&mut baseline);
    println!("\n| variant | fps | × model only |\n|---|---|---|");
    for (name, fps) in [
        ("model only (crop + LusNet)", base),
        ("pipeline, frames in memory", median(&mut memory)),
        ("pipeline, demo clips (ffmpeg)", median(&mut files)),
        ("pipeline, png every frame", median(&mut png)),
    ] {
        println!("| {name} | {fps:.1} | {:.2} |", fps / base);
    }
    if let (Some(files), Some(png)) = (last_files, last_png) {
        println!(
            "\nper-stage latency, last round of `pipeline, demo clips` (render: png every frame)"
        );
        println!("| stage | median ms | p99 ms |\n|---|---|---|");
        for (stage, stats) in &files.latency {
            let stats = if *stage == "render" {
                png.latency[stage]
            } else {
                *stats
            };
            println!("| {stage} | {:.2} | {:.2} |", stats.median_ms, stats.p99_ms);
        }
        let source = SourceSpec::Demo.open(&demo).expect("demo source");
        let live = pipeline(&model, source, Box::new(NoDisplay), true);
        let latency = live.latency["end_to_end"];
        println!(
            "\nreal time (paced): {} of {} frames scored, {} dropped; capture to output median {:.2} ms, p99 {:.2} ms",
            live.frames.scored,
            live.frames.captured,
            live.frames.dropped,
            latency.median_ms,
            latency.p99_ms
        );
        let json = serde_json::json!({
            "real_time": { "captured": live.frames.captured, "dropped": live.frames.dropped, "end_to_end": latency },
            "model_only_fps": base,
            "pipeline_memory_fps": memory,
            "pipeline_files_fps": files.fps,
            "pipeline_png_fps": png.fps,
            "latency": files.latency,
            "render": png.latency["render"],
        });
        let path = out.join("pipeline.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("json")).expect("write");
        println!("\nwritten to {}", path.display());
    }
}
