//! The bedside screen: what the clinician sees on the attached display.
//!
//! ```text
//! ┌ PLEURA  zone R2 · 12-zone exam      ● REC   24.9 fps  38 ms ┐
//! │                                 │  ┌──┐                       │
//! │   ultrasound frame, B-lines     │  │ 2│ NOW  conf 0.71        │
//! │   and consolidations tinted     │  └──┘                       │
//! │                                 │  CLIP 2  0.64  STABLE       │
//! │   [ FROZEN / LOW CONFIDENCE ]   │  [A-lines][B-lines] consol. │
//! │                                 │  R1 R2 … │ L1 L2 …  (map)   │
//! │                                 │  LUS 14 / 36   8/12 zones   │
//! └─────────────────────────────────┴──────────────────────────────┘
//! ```
//!
//! Until a new clip's sector is locked (about 32 frames), its frames are
//! scored on a provisional sector and the clip score is marked PRELIM, in
//! the hint colour: those frames count only if the locked sector agrees.
//!
//! Under the clip score, a model with the v3 heads shows the clip's
//! findings as chips, lit when present; the B-line and consolidation chips
//! wear their tint's colour, so they are also the overlay's legend (a v2
//! model gets the plain legend). On a 480×320 panel the chips wrap to a
//! second line.
//!
//! [`ScreenPainter::draw`] paints one [`ScreenState`] onto a [`Canvas`]
//! (an `embedded-graphics` draw target). The layout adapts to the canvas
//! size, from a 480×320 SPI panel to 1280×720; scores are drawn as large
//! seven-segment digits so they can be read from across a bed. Drawing
//! reuses the renderer's buffers: no heap allocation per frame once the
//! frame size is known.

use super::annotate::{Canvas, class_colour, score_colour};
use crate::exam::{Command, Exam};
use crate::model::heads::{FINDING_THRESHOLD, FINDINGS};
use crate::preprocess::Roi;
use crate::preprocess::quality::RejectedFrame;
use crate::scoring::ScoredFrame;
use embedded_graphics::mono_font::ascii::{
    FONT_6X10, FONT_6X13_BOLD, FONT_9X15, FONT_9X15_BOLD, FONT_10X20,
};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use std::fmt::Write as _;

/// Which screen to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenKind {
    /// Frames as they are scored.
    Live,
    /// The last frame held still (the exam and the status bar go on).
    Frozen,
    /// No frame has arrived for a while: the grabber or the probe is gone.
    NoSignal,
    /// Frames arrive but are not a scan (blank, flat, frozen, no sector):
    /// they are shown as they are, with no score.
    NoImage,
    /// The finished exam: every zone's score and the total.
    Summary,
}

/// Below this clip confidence the screen warns LOW CONFIDENCE.
pub const LOW_CONFIDENCE: f32 = 0.45;

/// Everything the screen shows, kept in reusable buffers.
#[derive(Debug, Clone)]
pub struct ScreenState {
    /// Which screen.
    pub kind: ScreenKind,
    /// The frame's gray pixels, row-major (empty before the first frame).
    pub pixels: Vec<u8>,
    /// Frame width.
    pub width: usize,
    /// Frame height.
    pub height: usize,
    /// The ultrasound sector within the frame.
    pub sector: Roi,
    /// Segmentation class per cell, `seg_size`² cells over the sector.
    pub seg_labels: Vec<u8>,
    /// Cells per side of the segmentation grid.
    pub seg_size: usize,
    /// The live (smoothed) score and its probability.
    pub live: (u8, f32),
    /// The clip (or zone) score and its confidence.
    pub clip: (u8, f32),
    /// Whether the clip score is stable.
    pub stable: bool,
    /// Whether the frame was scored on a provisional sector (the first
    /// second or so of a clip, before its sector is locked): its clip score
    /// is marked PRELIM, because it may not count.
    pub provisional: bool,
    /// The clip's finding probabilities ([`FINDINGS`] order), for a model
    /// with the v3 heads.
    pub findings: Option<[f32; FINDINGS.len()]>,
    /// Frames per second scored.
    pub fps: f32,
    /// Capture-to-screen latency, milliseconds.
    pub latency_ms: f32,
    /// Whether an exam is being recorded.
    pub recording: bool,
    /// What the clinician can do next (a short line under the scores).
    pub hint: Option<&'static str>,
    /// A fault the clinician must see (e.g. the exam journal cannot be
    /// written); shown above everything else until cleared.
    pub alert: Option<&'static str>,
    /// On a [`ScreenKind::NoImage`] screen, what is wrong (e.g. "NO IMAGE
    /// - CHECK PROBE").
    pub rejection: &'static str,
    /// On the summary, whether the exam is queued for the hospital.
    pub handover: Option<&'static str>,
    /// On the summary, the outbox's jobs: pending, sent, failed.
    pub outbox: Option<(usize, usize, usize)>,
    /// While the patient is chosen from the worklist: its rows.
    pub worklist: Option<WorklistView>,
}

/// The worklist as the screen shows it while the patient is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorklistView {
    /// One line per scheduled exam, then the anonymous exam.
    pub rows: Vec<String>,
    /// The row the keys have selected.
    pub selected: usize,
    /// Whether the worklist's answer is still awaited (no rows yet).
    pub waiting: bool,
}

/// The rows of the worklist screen on a screen of `size`, for `rows` rows
/// with `selected` visible: (row index, its rectangle). Rows are at least
/// 44 pixels high, for gloved fingers.
fn worklist_rows(size: Size, rows: usize, selected: usize) -> Vec<(usize, Rectangle)> {
    let layout = Layout::for_size(size);
    let top = layout.view.top_left.y + layout.large.character_size.height as i32 + 16;
    let height = (layout.large.character_size.height + 20).max(44) as i32;
    let bottom = size.height as i32 - 4;
    let visible = ((bottom - top) / (height + 4)).max(1) as usize;
    let first = selected.saturating_sub(visible - 1);
    (first..rows.min(first + visible))
        .enumerate()
        .map(|(slot, row)| {
            let y = top + slot as i32 * (height + 4);
            (
                row,
                Rectangle::new(
                    Point::new(8, y),
                    Size::new(size.width.saturating_sub(16), height as u32),
                ),
            )
        })
        .collect()
}

/// The worklist row a tap at `point` lands on, on a screen of `size`.
pub fn worklist_row_at(size: Size, point: Point, view: &WorklistView) -> Option<usize> {
    worklist_rows(size, view.rows.len(), view.selected)
        .into_iter()
        .find(|(_, rect)| rect.contains(point))
        .map(|(row, _)| row)
}

impl Default for ScreenState {
    fn default() -> Self {
        Self {
            kind: ScreenKind::NoSignal,
            pixels: Vec::new(),
            width: 0,
            height: 0,
            sector: Roi {
                x: 0,
                y: 0,
                w: 0,
                h: 0,
            },
            seg_labels: Vec::new(),
            seg_size: 0,
            live: (0, 0.0),
            clip: (0, 0.0),
            stable: false,
            provisional: false,
            findings: None,
            fps: 0.0,
            latency_ms: 0.0,
            recording: false,
            hint: None,
            alert: None,
            rejection: "",
            handover: None,
            outbox: None,
            worklist: None,
        }
    }
}

impl ScreenState {
    /// Copies a scored frame into the state (reusing the buffers).
    pub fn show_frame(&mut self, scored: &ScoredFrame) {
        let frame = &scored.frame;
        self.pixels.clear();
        self.pixels.extend_from_slice(&frame.pixels);
        self.width = frame.width;
        self.height = frame.height;
        self.sector = scored.sector;
        self.seg_labels.clear();
        self.seg_labels
            .extend_from_slice(&scored.prediction.seg_labels);
        self.seg_size = scored.prediction.seg_size;
        let scores = &scored.scores;
        let live = usize::from(scores.live_score);
        self.live = (
            scores.live_score,
            scores.live_probs.get(live).copied().unwrap_or(0.0),
        );
        self.clip = (scores.clip.score, scores.clip.confidence);
        self.stable = scores.stable;
        self.provisional = scored.provisional;
        self.findings = scores.findings;
    }

    /// Copies a frame that gets no score into the state: its picture, with
    /// no sector, segmentation or score, and the reason.
    pub fn show_rejected(&mut self, rejected: &RejectedFrame) {
        let frame = &rejected.frame;
        self.kind = ScreenKind::NoImage;
        self.pixels.clear();
        self.pixels.extend_from_slice(&frame.pixels);
        self.width = frame.width;
        self.height = frame.height;
        self.sector = Roi {
            x: 0,
            y: 0,
            w: 0,
            h: 0,
        };
        self.seg_labels.clear();
        self.seg_size = 0;
        self.rejection = rejected.reason.banner();
    }

    fn has_frame(&self) -> bool {
        self.width > 0 && self.height > 0 && self.pixels.len() == self.width * self.height
    }
}

/// Sizes of one layout.
#[derive(Debug, Clone, Copy)]
struct Layout {
    status: Rectangle,
    view: Rectangle,
    panel: Rectangle,
    small: &'static MonoFont<'static>,
    bold: &'static MonoFont<'static>,
    large: &'static MonoFont<'static>,
    digit: Size,
}

impl Layout {
    fn for_size(size: Size) -> Self {
        let compact = size.height < 400 || size.width < 640;
        let status_h = if compact { 14 } else { 24 };
        let panel_w = (size.width * 36 / 100).clamp(170, 420);
        let body_h = size.height.saturating_sub(status_h);
        Self {
            status: Rectangle::new(Point::zero(), Size::new(size.width, status_h)),
            view: Rectangle::new(
                Point::new(0, status_h as i32),
                Size::new(size.width.saturating_sub(panel_w), body_h),
            ),
            panel: Rectangle::new(
                Point::new(size.width.saturating_sub(panel_w) as i32, status_h as i32),
                Size::new(panel_w, body_h),
            ),
            small: if compact { &FONT_6X10 } else { &FONT_9X15 },
            bold: if compact {
                &FONT_6X13_BOLD
            } else {
                &FONT_9X15_BOLD
            },
            large: if compact {
                &FONT_9X15_BOLD
            } else {
                &FONT_10X20
            },
            digit: if compact {
                Size::new(30, 52)
            } else {
                Size::new(size.height / 9, size.height / 5)
            },
        }
    }
}

/// Where the parts of the side panel go (shared by drawing and touch).
#[derive(Debug, Clone, Copy)]
struct Panel {
    /// Left edge of the panel's content.
    x: i32,
    /// The live score digit, its label and confidence.
    scores: Rectangle,
    /// Top of the clip score line.
    clip_y: i32,
    /// Top of the legend, or of the finding chips.
    legend_y: i32,
    /// Right edge of the panel's content.
    right: i32,
    /// Top of the hint line.
    hint_y: i32,
    /// The zone map.
    map: Rectangle,
    /// Top of the total line.
    total_y: i32,
}

impl Panel {
    const PAD: i32 = 8;

    fn new(layout: &Layout) -> Self {
        let panel = layout.panel;
        let pad = Self::PAD;
        let x = panel.top_left.x + pad;
        let top = panel.top_left.y + pad;
        let clip_y = top + layout.digit.height as i32 + pad;
        let legend_y = clip_y + layout.large.character_size.height as i32 + pad;
        let small_h = layout.small.character_size.height as i32;
        let hint_y = legend_y + legend_lines(layout) * (small_h + CHIP_GAP) + pad / 2;
        let map_y = hint_y + small_h + pad / 2;
        let bottom = panel.top_left.y + panel.size.height as i32 - pad;
        let total_y = bottom - layout.large.character_size.height as i32;
        Self {
            x,
            scores: Rectangle::new(
                Point::new(panel.top_left.x, panel.top_left.y),
                Size::new(panel.size.width, (legend_y - panel.top_left.y) as u32),
            ),
            clip_y,
            legend_y,
            right: panel.top_left.x + panel.size.width as i32 - pad,
            hint_y,
            map: Rectangle::new(
                Point::new(x, map_y),
                Size::new(
                    panel.size.width.saturating_sub(2 * pad as u32),
                    (total_y - pad - map_y).max(0) as u32,
                ),
            ),
            total_y,
        }
    }
}

/// How the finding chips name [`FINDINGS`], in order.
const FINDING_LABELS: [&str; FINDINGS.len()] = ["A-lines", "B-lines", "consol.", "pleura"];
/// Space between chips, and between their lines.
const CHIP_GAP: i32 = 4;

/// Lines the legend (or the finding chips) may take: two on a compact
/// panel, where the four chips do not fit on one.
fn legend_lines(layout: &Layout) -> i32 {
    let chips: i32 = FINDING_LABELS
        .iter()
        .map(|l| chip_width(layout, l) + CHIP_GAP)
        .sum();
    if chips > layout.panel.size.width as i32 - 2 * Panel::PAD {
        2
    } else {
        1
    }
}

fn chip_width(layout: &Layout, label: &str) -> i32 {
    label.len() as i32 * layout.small.character_size.width as i32 + 6
}

/// The colour of a finding's chip: its tint's colour for the findings the
/// overlay shows.
fn finding_colour(finding: usize) -> Rgb888 {
    match FINDINGS[finding] {
        "b_lines" => class_colour(1),
        "consolidation" => class_colour(2),
        "pleura_abnormal" => Rgb888::new(255, 140, 90),
        _ => Rgb888::new(150, 200, 150),
    }
}

/// The cell of zone `index` in a zone map drawn in `area`: one column per
/// side, one row per zone of a side.
fn zone_cell(area: Rectangle, per_side: usize, index: usize) -> Rectangle {
    let rows = per_side.max(1) as u32;
    let gap = 3;
    let cell_w = area.size.width.saturating_sub(gap) / 2;
    let cell_h = (area.size.height.saturating_sub(gap * (rows - 1)) / rows)
        .min(cell_w / 2)
        .max(1);
    let (side, row) = ((index as u32) / rows, (index as u32) % rows);
    Rectangle::new(
        area.top_left
            + Point::new(
                (side * (cell_w + gap)) as i32,
                (row * (cell_h + gap)) as i32,
            ),
        Size::new(cell_w, cell_h),
    )
}

/// What a tap at `point` on a live screen of `size` asks for: a zone of
/// the map selects it, the scores record the zone, the picture freezes
/// or unfreezes. Targets are large, for gloved fingers.
pub fn tap_command(size: Size, point: Point, exam: Option<&Exam>) -> Option<Command> {
    let layout = Layout::for_size(size);
    let panel = Panel::new(&layout);
    if let Some(exam) = exam.filter(|e| !e.finished) {
        let per_side = exam.protocol.per_side();
        if let Some(zone) =
            (0..exam.zones.len()).find(|&i| zone_cell(panel.map, per_side, i).contains(point))
        {
            return Some(Command::SelectZone(zone));
        }
        if panel.scores.contains(point) {
            return Some(Command::Record);
        }
    }
    layout.view.contains(point).then_some(Command::ToggleFreeze)
}

const BACKGROUND: Rgb888 = Rgb888::new(8, 8, 10);
const PANEL: Rgb888 = Rgb888::new(24, 24, 30);
const TEXT: Rgb888 = Rgb888::new(225, 225, 225);
const DIM: Rgb888 = Rgb888::new(130, 130, 140);
const ALERT: Rgb888 = Rgb888::new(230, 45, 45);
const FROZEN: Rgb888 = Rgb888::new(70, 140, 255);
const AMBER: Rgb888 = Rgb888::new(245, 170, 20);
const HINT: Rgb888 = Rgb888::new(250, 215, 120);
/// Opacity of the segmentation tint.
const TINT_ALPHA: u16 = 115; // of 256

/// Draws screens, keeping its scratch buffers between frames.
#[derive(Debug, Default)]
pub struct ScreenPainter {
    text: String,
    column_map: Vec<usize>,
}

impl ScreenPainter {
    /// A renderer with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Paints `state` (and the exam, if one runs) onto `canvas`. `classes`
    /// names the segmentation classes, background first.
    pub fn draw(
        &mut self,
        canvas: &mut Canvas,
        state: &ScreenState,
        exam: Option<&Exam>,
        classes: &[String],
    ) {
        let layout = Layout::for_size(canvas.size());
        fill(canvas, canvas.bounding_box(), BACKGROUND);
        self.draw_status(canvas, &layout, state, exam);
        if let Some(worklist) = &state.worklist {
            self.draw_worklist(canvas, &layout, worklist);
            return;
        }
        if state.kind == ScreenKind::Summary {
            if let Some(exam) = exam {
                self.draw_summary(canvas, &layout, state, exam);
            }
            return;
        }
        if state.has_frame() && state.kind != ScreenKind::NoSignal {
            self.draw_view(canvas, layout.view, state);
        }
        fill(canvas, layout.panel, PANEL);
        self.draw_panel(canvas, &layout, state, exam, classes);
        let banner = match state.kind {
            _ if state.alert.is_some() => state.alert.map(|text| (text, ALERT)),
            ScreenKind::NoSignal => Some(("NO SIGNAL", ALERT)),
            ScreenKind::NoImage => Some((state.rejection, ALERT)),
            ScreenKind::Frozen => Some(("FROZEN", FROZEN)),
            _ if state.clip.1 < LOW_CONFIDENCE => Some(("LOW CONFIDENCE", AMBER)),
            _ => None,
        };
        if let Some((text, colour)) = banner {
            draw_banner(
                canvas,
                &layout,
                text,
                colour,
                matches!(state.kind, ScreenKind::NoSignal | ScreenKind::NoImage),
            );
        }
    }

    fn draw_status(
        &mut self,
        canvas: &mut Canvas,
        layout: &Layout,
        state: &ScreenState,
        exam: Option<&Exam>,
    ) {
        fill(canvas, layout.status, Rgb888::new(0, 0, 0));
        let style = MonoTextStyle::new(layout.bold, TEXT);
        let y = layout.status.top_left.y + 2;
        self.text.clear();
        let _ = match exam {
            Some(e) if !e.finished => write!(
                self.text,
                "PLEURA  zone {} ({}/{})",
                e.current_name(),
                e.current + 1,
                e.zones.len()
            ),
            _ => write!(self.text, "PLEURA"),
        };
        // Whose exam it is, as far as the bar leaves room (the right third
        // holds the speed and REC).
        if let Some(identity) = exam
            .filter(|e| !e.finished)
            .and_then(|e| e.identity.as_ref())
        {
            let room = (layout.status.size.width as usize * 2 / 3)
                / layout.bold.character_size.width as usize;
            let start = self.text.len();
            let _ = match &identity.patient {
                Some(patient) => write!(self.text, "  {}", patient.name.replace('^', " ").trim()),
                None => write!(self.text, "  ANONYMOUS"),
            };
            if self.text.chars().count() > room {
                let keep: String = self.text.chars().take(room.max(start)).collect();
                self.text = keep;
            }
        }
        let _ =
            Text::with_baseline(&self.text, Point::new(6, y), style, Baseline::Top).draw(canvas);
        self.text.clear();
        let _ = write!(
            self.text,
            "{:.1} fps  {:.0} ms",
            state.fps, state.latency_ms
        );
        let right = TextStyleBuilder::new()
            .alignment(Alignment::Right)
            .baseline(Baseline::Top)
            .build();
        let width = layout.status.size.width as i32;
        let end = Text::with_text_style(
            &self.text,
            Point::new(width - 6, y),
            MonoTextStyle::new(layout.small, DIM),
            right,
        )
        .draw(canvas);
        if state.recording {
            let text_w = (self.text.len() as i32 + 2) * layout.small.character_size.width as i32;
            let x = width - 6 - text_w;
            let h = layout.status.size.height as i32;
            let _ = Text::with_text_style(
                "REC",
                Point::new(x, y),
                MonoTextStyle::new(layout.bold, ALERT),
                right,
            )
            .draw(canvas);
            let dot = (h / 2).max(6) as u32;
            let rec_w = 3 * layout.bold.character_size.width as i32;
            fill(
                canvas,
                Rectangle::new(
                    Point::new(x - rec_w - dot as i32 - 4, (h - dot as i32) / 2),
                    Size::new(dot, dot),
                ),
                ALERT,
            );
        }
        let _ = end;
    }

    /// Blits the frame into the view, keeping its aspect, with the
    /// segmentation tinted over the sector.
    fn draw_view(&mut self, canvas: &mut Canvas, view: Rectangle, state: &ScreenState) {
        let (fw, fh) = (state.width, state.height);
        let (vw, vh) = (view.size.width as usize, view.size.height as usize);
        if vw == 0 || vh == 0 {
            return;
        }
        // Fit: the larger scale that keeps the whole frame visible.
        let (dw, dh) = if fw * vh > fh * vw {
            (vw, fh * vw / fw)
        } else {
            (fw * vh / fh, vh)
        };
        let x0 = view.top_left.x as usize + (vw - dw) / 2;
        let y0 = view.top_left.y as usize + (vh - dh) / 2;
        self.column_map.clear();
        self.column_map.extend((0..dw).map(|x| x * fw / dw));
        let stride = canvas.0.width() as usize * 3;
        let buffer: &mut [u8] = &mut canvas.0;
        let sector = state.sector;
        let seg = state.seg_size;
        let tint_ok =
            seg > 0 && sector.w > 0 && sector.h > 0 && state.seg_labels.len() == seg * seg;
        for y in 0..dh {
            let sy = y * fh / dh;
            let row = &state.pixels[sy * fw..(sy + 1) * fw];
            let in_rows = tint_ok && (sector.y..sector.y + sector.h).contains(&sy);
            let cell_row = if in_rows {
                (sy - sector.y) * seg / sector.h * seg
            } else {
                0
            };
            let out = &mut buffer[(y0 + y) * stride + x0 * 3..(y0 + y) * stride + (x0 + dw) * 3];
            for (pixel, &sx) in out.chunks_exact_mut(3).zip(&self.column_map) {
                let v = row[sx];
                let class = if in_rows && (sector.x..sector.x + sector.w).contains(&sx) {
                    state.seg_labels[cell_row + (sx - sector.x) * seg / sector.w]
                } else {
                    0
                };
                if class == 0 {
                    pixel.copy_from_slice(&[v, v, v]);
                } else {
                    let tint = class_colour(usize::from(class));
                    for (channel, t) in pixel.iter_mut().zip([tint.r(), tint.g(), tint.b()]) {
                        let base = u16::from(v);
                        *channel =
                            ((base * (256 - TINT_ALPHA) + u16::from(t) * TINT_ALPHA) >> 8) as u8;
                    }
                }
            }
        }
    }

    fn draw_panel(
        &mut self,
        canvas: &mut Canvas,
        layout: &Layout,
        state: &ScreenState,
        exam: Option<&Exam>,
        classes: &[String],
    ) {
        let geometry = Panel::new(layout);
        let pad = Panel::PAD;
        let x = geometry.x;
        let y = layout.panel.top_left.y + pad;
        let has_scores =
            !matches!(state.kind, ScreenKind::NoSignal | ScreenKind::NoImage) && state.has_frame();
        // The live score, large.
        let (live, live_p) = state.live;
        let colour = if has_scores { score_colour(live) } else { DIM };
        draw_digit(
            canvas,
            Point::new(x, y),
            layout.digit,
            has_scores.then_some(live),
            colour,
        );
        let label_x = x + layout.digit.width as i32 + 10;
        let bold = MonoTextStyle::new(layout.large, colour);
        let _ =
            Text::with_baseline("NOW", Point::new(label_x, y), bold, Baseline::Top).draw(canvas);
        self.text.clear();
        if has_scores {
            let _ = write!(self.text, "conf {live_p:.2}");
        }
        let small = MonoTextStyle::new(layout.small, TEXT);
        let line = layout.large.character_size.height as i32 + 4;
        let _ = Text::with_baseline(
            &self.text,
            Point::new(label_x, y + line),
            small,
            Baseline::Top,
        )
        .draw(canvas);
        // The clip (zone) score.
        let y = geometry.clip_y;
        let (clip, clip_p) = state.clip;
        self.text.clear();
        if has_scores {
            let _ = write!(self.text, "CLIP {clip}  {clip_p:.2}");
        } else {
            let _ = write!(self.text, "CLIP -");
        }
        let clip_style = MonoTextStyle::new(
            layout.large,
            if has_scores { score_colour(clip) } else { DIM },
        );
        let end = Text::with_baseline(&self.text, Point::new(x, y), clip_style, Baseline::Top)
            .draw(canvas)
            .unwrap_or(Point::new(x, y));
        if has_scores {
            let (word, c) = if state.provisional {
                ("PRELIM", HINT)
            } else if state.stable {
                ("STABLE", TEXT)
            } else {
                ("settling", DIM)
            };
            let _ = Text::with_baseline(
                word,
                Point::new(end.x + 8, y + 2),
                MonoTextStyle::new(layout.bold, c),
                Baseline::Top,
            )
            .draw(canvas);
        }
        if let (Some(findings), true) = (state.findings, has_scores) {
            self.draw_findings(canvas, layout, &geometry, &findings);
        } else {
            self.draw_legend(canvas, layout, geometry.legend_y, x, classes);
        }
        if let Some(hint) = state.hint {
            let _ = Text::with_baseline(
                hint,
                Point::new(x, geometry.hint_y),
                MonoTextStyle::new(layout.small, HINT),
                Baseline::Top,
            )
            .draw(canvas);
        }
        if let Some(exam) = exam {
            self.draw_zone_map(canvas, layout, geometry.map, exam, true);
            self.text.clear();
            let _ = write!(self.text, "LUS {}/{}", exam.total(), exam.max_total());
            let end = Text::with_baseline(
                &self.text,
                Point::new(x, geometry.total_y),
                MonoTextStyle::new(layout.large, TEXT),
                Baseline::Top,
            )
            .draw(canvas)
            .unwrap_or(Point::new(x, geometry.total_y));
            self.text.clear();
            let _ = write!(self.text, "{}/{} zones", exam.recorded(), exam.zones.len());
            let _ = Text::with_baseline(
                &self.text,
                Point::new(end.x + 8, geometry.total_y + 2),
                small,
                Baseline::Top,
            )
            .draw(canvas);
        } else {
            let _ = Text::with_baseline(
                "no exam (pleura run --exam)",
                Point::new(x, geometry.map.top_left.y),
                MonoTextStyle::new(layout.small, DIM),
                Baseline::Top,
            )
            .draw(canvas);
        }
    }

    /// The segmentation classes' colours and names, on one line.
    fn draw_legend(
        &mut self,
        canvas: &mut Canvas,
        layout: &Layout,
        y: i32,
        x: i32,
        classes: &[String],
    ) {
        let small = MonoTextStyle::new(layout.small, TEXT);
        let mut lx = x;
        let swatch = layout.small.character_size.height - 2;
        for (class, label) in classes.iter().enumerate().skip(1) {
            fill(
                canvas,
                Rectangle::new(Point::new(lx, y + 1), Size::new(swatch, swatch)),
                class_colour(class),
            );
            lx = Text::with_baseline(
                label,
                Point::new(lx + swatch as i32 + 4, y),
                small,
                Baseline::Top,
            )
            .draw(canvas)
            .map(|p| p.x)
            .unwrap_or(lx)
                + 10;
        }
    }

    /// One chip per finding, lit in its colour when the clip has it,
    /// wrapping to the next line at the panel's edge.
    fn draw_findings(
        &mut self,
        canvas: &mut Canvas,
        layout: &Layout,
        geometry: &Panel,
        findings: &[f32; FINDINGS.len()],
    ) {
        let line_h = layout.small.character_size.height as i32 + CHIP_GAP;
        let (mut cx, mut cy) = (geometry.x, geometry.legend_y);
        for (finding, (&p, label)) in findings.iter().zip(FINDING_LABELS).enumerate() {
            let w = chip_width(layout, label);
            if cx + w > geometry.right && cx > geometry.x {
                cx = geometry.x;
                cy += line_h;
            }
            let chip = Rectangle::new(
                Point::new(cx, cy),
                Size::new(w as u32, layout.small.character_size.height + 1),
            );
            let present = p >= FINDING_THRESHOLD;
            let colour = finding_colour(finding);
            let text = if present {
                fill(canvas, chip, colour);
                BACKGROUND
            } else {
                let _ = chip
                    .into_styled(PrimitiveStyle::with_stroke(DIM, 1))
                    .draw(canvas);
                DIM
            };
            let _ = Text::with_baseline(
                label,
                Point::new(cx + 3, cy + 1),
                MonoTextStyle::new(layout.small, text),
                Baseline::Top,
            )
            .draw(canvas);
            cx += w + CHIP_GAP;
        }
    }

    /// One column per side, one cell per zone: recorded zones filled with
    /// their score's colour, the current zone outlined.
    fn draw_zone_map(
        &mut self,
        canvas: &mut Canvas,
        layout: &Layout,
        area: Rectangle,
        exam: &Exam,
        show_current: bool,
    ) {
        let per_side = exam.protocol.per_side();
        for (index, name) in exam.protocol.zones().iter().enumerate() {
            let cell = zone_cell(area, per_side, index);
            let (top_left, cell_h) = (cell.top_left, cell.size.height);
            let font = if cell_h >= 30 {
                layout.large
            } else {
                layout.bold
            };
            let zone = exam.zones[index];
            let (fill_colour, text_colour) = match zone {
                Some(z) => (score_colour(z.score), Rgb888::new(0, 0, 0)),
                None => (Rgb888::new(45, 45, 55), DIM),
            };
            fill(canvas, cell, fill_colour);
            if show_current && index == exam.current && !exam.finished {
                let _ = cell
                    .into_styled(PrimitiveStyle::with_stroke(TEXT, 3))
                    .draw(canvas);
            }
            self.text.clear();
            let _ = match zone {
                Some(z) => write!(
                    self.text,
                    "{name} {}{}",
                    z.score,
                    if z.manual { "*" } else { "" }
                ),
                None => write!(self.text, "{name} -"),
            };
            let style = MonoTextStyle::new(font, text_colour);
            let text_y = top_left.y + (cell_h as i32 - font.character_size.height as i32) / 2;
            let _ = Text::with_baseline(
                &self.text,
                Point::new(top_left.x + 6, text_y),
                style,
                Baseline::Top,
            )
            .draw(canvas);
        }
    }

    /// Draws the text buffer as a small line at `y`; returns the next
    /// line's `y`.
    fn small_line(&self, canvas: &mut Canvas, layout: &Layout, y: i32, colour: Rgb888) -> i32 {
        let _ = Text::with_baseline(
            &self.text,
            Point::new(10, y),
            MonoTextStyle::new(layout.small, colour),
            Baseline::Top,
        )
        .draw(canvas);
        y + layout.small.character_size.height as i32 + 6
    }

    /// The scheduled patients, one large row each, the selected one framed.
    fn draw_worklist(&mut self, canvas: &mut Canvas, layout: &Layout, view: &WorklistView) {
        let title = if view.waiting {
            "ASKING THE WORKLIST..."
        } else {
            "WHOSE EXAM?  N/P select, R pick"
        };
        let _ = Text::with_baseline(
            title,
            Point::new(10, layout.view.top_left.y + 8),
            MonoTextStyle::new(layout.large, TEXT),
            Baseline::Top,
        )
        .draw(canvas);
        for (row, rect) in worklist_rows(canvas.size(), view.rows.len(), view.selected) {
            let selected = row == view.selected;
            fill(
                canvas,
                rect,
                if selected {
                    Rgb888::new(40, 70, 120)
                } else {
                    PANEL
                },
            );
            if selected {
                let _ = rect
                    .into_styled(PrimitiveStyle::with_stroke(HINT, 3))
                    .draw(canvas);
            }
            let font = layout.bold;
            let y =
                rect.top_left.y + (rect.size.height as i32 - font.character_size.height as i32) / 2;
            let _ = Text::with_baseline(
                &view.rows[row],
                Point::new(rect.top_left.x + 10, y),
                MonoTextStyle::new(font, TEXT),
                Baseline::Top,
            )
            .draw(canvas);
        }
    }

    fn draw_summary(
        &mut self,
        canvas: &mut Canvas,
        layout: &Layout,
        state: &ScreenState,
        exam: &Exam,
    ) {
        let body = Rectangle::new(
            layout.view.top_left,
            Size::new(canvas.size().width, layout.view.size.height),
        );
        let pad = 10;
        let title = MonoTextStyle::new(layout.large, TEXT);
        let mut y = body.top_left.y + pad;
        self.text.clear();
        let _ = write!(
            self.text,
            "EXAM SUMMARY  {} zones, {} recorded",
            exam.zones.len(),
            exam.recorded()
        );
        let _ =
            Text::with_baseline(&self.text, Point::new(pad, y), title, Baseline::Top).draw(canvas);
        y += layout.large.character_size.height as i32 + pad;
        // Whose exam, then whether it is on its way to the hospital.
        if let Some(identity) = &exam.identity {
            self.text.clear();
            let _ = match &identity.patient {
                Some(p) => write!(
                    self.text,
                    "{}  ID {}  ACC {}",
                    p.name.replace('^', " ").trim(),
                    p.id,
                    identity.accession
                ),
                None => write!(self.text, "ANONYMOUS  ACC {}", identity.accession),
            };
            y = self.small_line(canvas, layout, y, DIM);
        }
        if state.handover.is_some() || state.outbox.is_some() {
            self.text.clear();
            if let Some(handover) = state.handover {
                let _ = write!(self.text, "{handover}  ");
            }
            if let Some((pending, sent, failed)) = state.outbox {
                let _ = write!(
                    self.text,
                    "OUTBOX {pending} pending, {sent} sent, {failed} failed"
                );
            }
            let colour = match (state.handover, state.outbox) {
                (Some(text), _) if text.starts_with("NOT") => ALERT,
                (_, Some((_, _, failed))) if failed > 0 => AMBER,
                _ => DIM,
            };
            y = self.small_line(canvas, layout, y, colour);
        }
        // The total, large, coloured by the mean zone score.
        let mean = if exam.recorded() > 0 {
            exam.total() as f32 / exam.recorded() as f32
        } else {
            0.0
        };
        let colour = score_colour(mean.round() as u8);
        self.text.clear();
        let _ = write!(
            self.text,
            "LUS SCORE {} / {}",
            exam.total(),
            exam.max_total()
        );
        let _ = Text::with_baseline(
            &self.text,
            Point::new(pad, y),
            MonoTextStyle::new(layout.large, colour),
            Baseline::Top,
        )
        .draw(canvas);
        y += layout.large.character_size.height as i32 + pad;
        let map = Rectangle::new(
            Point::new(pad, y),
            Size::new(
                canvas.size().width - 2 * pad as u32,
                (body.top_left.y + body.size.height as i32 - pad - y).max(0) as u32,
            ),
        );
        self.draw_zone_map(canvas, layout, map, exam, false);
    }
}

fn draw_banner(canvas: &mut Canvas, layout: &Layout, text: &str, colour: Rgb888, centred: bool) {
    let font = layout.large;
    let w = (text.len() as u32 + 4) * font.character_size.width;
    let h = font.character_size.height + 12;
    let view = layout.view;
    let y = if centred {
        view.top_left.y + (view.size.height as i32 - h as i32) / 2
    } else {
        view.top_left.y + 12
    };
    let top_left = Point::new(view.top_left.x + (view.size.width as i32 - w as i32) / 2, y);
    let banner = Rectangle::new(top_left, Size::new(w, h));
    fill(canvas, banner, Rgb888::new(0, 0, 0));
    let _ = banner
        .into_styled(PrimitiveStyle::with_stroke(colour, 3))
        .draw(canvas);
    let style = TextStyleBuilder::new()
        .alignment(Alignment::Center)
        .baseline(Baseline::Top)
        .build();
    let _ = Text::with_text_style(
        text,
        Point::new(top_left.x + w as i32 / 2, top_left.y + 6),
        MonoTextStyle::new(font, colour),
        style,
    )
    .draw(canvas);
}

/// A seven-segment digit filling `size` (a dash when `digit` is None).
fn draw_digit(canvas: &mut Canvas, at: Point, size: Size, digit: Option<u8>, colour: Rgb888) {
    // Segments a–g, as in a seven-segment display.
    const SEGMENTS: [u8; 10] = [
        0b0111111, 0b0000110, 0b1011011, 0b1001111, 0b1100110, 0b1101101, 0b1111101, 0b0000111,
        0b1111111, 0b1101111,
    ];
    let bits = digit.map_or(0b1000000, |d| SEGMENTS[usize::from(d.min(9))]);
    let (w, h) = (size.width as i32, size.height as i32);
    let t = (w / 5).max(3);
    let half = h / 2;
    let rects = [
        (0, 0, w, t),               // a: top
        (w - t, 0, t, half),        // b: upper right
        (w - t, half, t, h - half), // c: lower right
        (0, h - t, w, t),           // d: bottom
        (0, half, t, h - half),     // e: lower left
        (0, 0, t, half),            // f: upper left
        (0, half - t / 2, w, t),    // g: middle
    ];
    for (segment, &(x, y, sw, sh)) in rects.iter().enumerate() {
        if bits & (1 << segment) != 0 {
            fill(
                canvas,
                Rectangle::new(at + Point::new(x, y), Size::new(sw as u32, sh as u32)),
                colour,
            );
        }
    }
}

/// Fills a rectangle straight into the canvas buffer (clipped).
fn fill(canvas: &mut Canvas, rect: Rectangle, colour: Rgb888) {
    let area = rect.intersection(&canvas.bounding_box());
    let Some(bottom_right) = area.bottom_right() else {
        return;
    };
    let stride = canvas.0.width() as usize * 3;
    let (x0, x1) = (area.top_left.x as usize, bottom_right.x as usize + 1);
    let buffer: &mut [u8] = &mut canvas.0;
    for y in area.top_left.y as usize..=bottom_right.y as usize {
        for pixel in buffer[y * stride + x0 * 3..y * stride + x1 * 3].chunks_exact_mut(3) {
            pixel.copy_from_slice(&[colour.r(), colour.g(), colour.b()]);
        }
    }
}
