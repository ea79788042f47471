//! What the commands print: one clip's result, a live run's summary, an
//! evaluation, progress. Standard output may be closed early
//! (`pleura model info | head -1`) without failing a command.

use pleura::eval::EvalReport;
use pleura::model::heads::{FINDING_THRESHOLD, FINDINGS};
use pleura::preprocess::Roi;
use pleura::record::RunReport;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prints a line on standard output, like `println!`, but a closed output
/// (`pleura model info | head -1`) is not an error: see [`write_stdout`].
macro_rules! say {
    () => { $crate::cli::print::write_stdout(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::print::write_stdout(format_args!($($arg)*)) };
}
pub(crate) use say;

/// One clip's result, as `pleura run` and `pleura score` print it.
pub(crate) struct ClipLines<'a> {
    /// The clip's name or path.
    pub(crate) name: &'a str,
    /// Frames scored.
    pub(crate) frames: usize,
    /// The sector its frames were cropped to.
    pub(crate) sector: Roi,
    /// The clip score and its confidence.
    pub(crate) score: (u8, f32),
    /// Whether the live score settled (a live run only).
    pub(crate) stable: Option<bool>,
    /// The clip's score probabilities.
    pub(crate) probs: [f32; 4],
    /// Each segmentation class but the background, with its mean area.
    pub(crate) areas: Vec<(&'a str, f32)>,
    /// The finding heads' probabilities (empty without them).
    pub(crate) findings: BTreeMap<String, f32>,
    /// Frames left out, and why (empty when none was).
    pub(crate) rejected: String,
}

/// Prints one clip's result.
pub(crate) fn print_clip(clip: &ClipLines) {
    say!("clip          {}", clip.name);
    say!("frames        {}", clip.frames);
    let s = clip.sector;
    say!("sector        x={} y={} w={} h={}", s.x, s.y, s.w, s.h);
    let (score, confidence) = clip.score;
    match clip.stable {
        Some(stable) => say!(
            "score         {score} (confidence {confidence:.2}, {})",
            if stable { "stable" } else { "not yet stable" }
        ),
        None => say!("score         {score} (confidence {confidence:.2})"),
    }
    say!(
        "p(score)      {}",
        clip.probs.map(|p| format!("{p:.2}")).join("  ")
    );
    for (name, fraction) in &clip.areas {
        say!("{name:<14}{:.1} % of the sector", 100.0 * fraction);
    }
    if !clip.findings.is_empty() {
        say!("findings      {}", findings_line(&clip.findings));
    }
    if !clip.rejected.is_empty() {
        say!("rejected      {}", clip.rejected);
    }
}

/// Prints a live run: each clip, then the run's counts and latencies.
pub(crate) fn print_run(report: &RunReport) {
    for clip in &report.clips {
        print_clip(&ClipLines {
            name: &clip.name,
            frames: clip.frames,
            sector: clip.sector,
            score: (clip.score, clip.confidence),
            stable: Some(clip.stable),
            probs: clip.probs,
            areas: clip.areas.iter().map(|(n, f)| (n.as_str(), *f)).collect(),
            findings: clip.findings.clone(),
            rejected: reasons(&clip.rejected),
        });
        say!();
    }
    for clip in &report.unscored {
        say!("clip          {}", clip.name);
        say!("score         none: no frame is a scan");
        say!("rejected      {}", reasons(&clip.rejected));
        say!();
    }
    let f = &report.frames;
    say!(
        "run           {} · {} frames scored in {:.1} s ({:.1} fps)",
        report.end,
        f.scored,
        report.wall_s,
        report.fps
    );
    say!(
        "frames        {} captured · {} dropped · {} corrupt · {} rejected · {} displayed{}",
        f.captured,
        f.dropped,
        f.corrupt,
        f.rejected,
        f.rendered,
        if f.no_signal > 0 {
            format!(" · {} no-signal reports", f.no_signal)
        } else {
            String::new()
        }
    );
    if !report.rejected.is_empty() {
        say!("rejected      {}", reasons(&report.rejected));
    }
    let stage = |name: &str| report.latency.get(name).copied().unwrap_or_default();
    let (inference, total) = (stage("inference"), stage("end_to_end"));
    say!(
        "latency       inference {:.1} ms (p99 {:.1}) · capture to output {:.1} ms (p99 {:.1})",
        inference.median_ms,
        inference.p99_ms,
        total.median_ms,
        total.p99_ms
    );
    for error in &report.output_errors {
        say!("output error  {error}");
    }
}

/// Rejection counts as `no_image 12 · frozen 3`.
pub(crate) fn reasons(counts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
    parts.join(" · ")
}

/// `b_lines yes 0.93  consolidation no 0.12 ...`: each finding, its call
/// at [`FINDING_THRESHOLD`] and its probability.
pub(crate) fn findings_line(findings: &BTreeMap<String, f32>) -> String {
    FINDINGS
        .iter()
        .filter_map(|&name| {
            let p = *findings.get(name)?;
            let call = if p >= FINDING_THRESHOLD { "yes" } else { "no" };
            Some(format!("{name} {call} {p:.2}"))
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// Writes one line to standard output. When the reader has gone (a closed
/// pipe), the rest of the output is dropped quietly and the command goes
/// on, so that a run still writes its report and exits as it would have;
/// another write error is reported once, on standard error.
pub(crate) fn write_stdout(line: std::fmt::Arguments) {
    static GONE: AtomicBool = AtomicBool::new(false);
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("pleura: cannot write to standard output: {e}; output dropped");
        }
    }
}

/// Rewrites one progress line on standard error: `[  12/238] name`.
pub(crate) fn progress_line(done: usize, total: usize, name: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "\r[{done:>4}/{total}] {name:<48}");
    if done == total {
        let _ = writeln!(err);
    }
}

/// Prints an evaluation against expert scores.
pub(crate) fn print_report(r: &EvalReport) {
    let v = &r.video;
    say!(
        "clips scored {} · skipped {}",
        r.clips_scored,
        r.clips_skipped
    );
    say!(
        "video  accuracy {:.3}  macro-F1 {:.3}  weighted-F1 {:.3}  QWK {:.3}  MAE {:.3}",
        v.accuracy,
        v.macro_f1,
        v.weighted_f1,
        v.qwk,
        v.mae
    );
    if let Some(exam) = &r.exam {
        say!(
            "exam   MAE of the total {:.2} over {} patients",
            exam.mae,
            exam.patients
        );
    }
    for (name, f) in &r.findings {
        match f.auc {
            Some(auc) => say!(
                "{name} AUC {auc:.3} over {} labelled clips ({} present)",
                f.clips,
                f.positive
            ),
            None => say!(
                "{name} AUC n/a ({} labelled clips, {} present: needs both answers)",
                f.clips,
                f.positive
            ),
        }
    }
    if let (Some(median), Some(p90)) = (
        r.bline.negative_fraction_median,
        r.bline.negative_fraction_p90,
    ) {
        say!(
            "B-line tint on B-line-negative clips: median {:.1} %, p90 {:.1} % of the sector",
            100.0 * median,
            100.0 * p90
        );
    }
    say!("confusion (rows = expert 0–3, columns = Pleura 0–3)");
    for (i, row) in v.confusion.0.iter().enumerate() {
        say!(
            "  {i} │ {}",
            row.iter().map(|c| format!("{c:>4}")).collect::<String>()
        );
    }
}
