//! From a [`Scene`] to pixels, one frame at a time.
//!
//! The frame is first built in *beam space* (rows = depth samples, columns
//! = scan lines), where ultrasound physics is simple:
//!
//! ```text
//! echogenicity E(z, u)  ×  speckle |g|  ×  gain(z)  ──log──►  8-bit beam image
//!   (anatomy, pleura,       (complex Gaussian,   (attenuation,
//!    A/B-lines, ...)         correlated in space   TGC, gain)
//!                            and time: Rayleigh)
//! ```
//!
//! and then scan-converted to the display grid through a lookup table
//! (a convex fan, or a linear rectangle). The segmentation mask is built
//! in the same beam grid and converted with the same table, so it is
//! pixel-exact by construction.

use super::scene::Scene;
use super::{CLASS_B_LINE, CLASS_CONSOLIDATION, Probe};
use rand::RngExt;
use rand_distr::StandardNormal;
use rand_pcg::Pcg64Mcg;
use std::f32::consts::TAU;

/// Echogenicity of a rib's acoustic shadow.
const SHADOW: f32 = 0.002;
/// Echogenicity of fluid (effusion).
const ANECHOIC: f32 = 0.0015;
/// Echogenicity of consolidated, tissue-like lung.
const CONSOLIDATED: f32 = 0.1;
/// Brightest that overlapping B-lines get.
const MAX_B_LINE: f32 = 0.22;
/// A lung column belongs to a B-line where the B-line profile exceeds this.
const B_LINE_MASK_LEVEL: f32 = 0.5;
/// Coherence of the speckle: weights of the 3-tap smoothing, applied
/// along depth and across lines (the point-spread function).
const SMOOTH: [f32; 3] = [0.25, 0.5, 0.25];
/// Share of the previous frame in each displayed frame (frame averaging).
const PERSISTENCE: f32 = 0.4;
/// Power of unit complex Gaussian noise left after the 3×3 smoothing:
/// 2 components × (Σ w²)² = 2 × 0.375².
const SMOOTHED_POWER: f32 = 2.0 * 0.375 * 0.375;

/// Per-output-pixel place in beam space: the top-left beam sample and the
/// bilinear weights (0–255) towards the next row and column.
#[derive(Debug, Clone, Copy)]
struct Tap {
    index: u32,
    row_weight: u8,
    col_weight: u8,
}

/// The scan converter: where every display pixel looks in beam space.
#[derive(Debug, Clone)]
pub struct ScanConverter {
    taps: Vec<Option<Tap>>,
}

impl ScanConverter {
    /// The table for a `width × height` image of `rows × lines` beam samples.
    /// `fan` is `(surface radius, half angle)` for a convex probe, in
    /// fractions of the height and radians.
    pub fn new(
        probe: Probe,
        width: usize,
        height: usize,
        rows: usize,
        lines: usize,
        fan: (f32, f32),
    ) -> Self {
        let (w, h) = (width as f32, height as f32);
        let (radius, half_angle) = (fan.0 * h, fan.1);
        let taps = (0..width * height)
            .map(|p| {
                let (x, y) = ((p % width) as f32 + 0.5, (p / width) as f32 + 0.5);
                let (z, u) = match probe {
                    Probe::Linear => (y / h, x / w),
                    Probe::Convex => {
                        let (dx, dy) = (x - w / 2.0, y + radius);
                        let r = (dx * dx + dy * dy).sqrt();
                        let angle = dx.atan2(dy);
                        ((r - radius) / h, (angle + half_angle) / (2.0 * half_angle))
                    }
                };
                if !(0.0..1.0).contains(&z) || !(0.0..1.0).contains(&u) {
                    return None;
                }
                let row = (z * rows as f32 - 0.5).clamp(0.0, (rows - 1) as f32);
                let col = (u * lines as f32 - 0.5).clamp(0.0, (lines - 1) as f32);
                let (r0, c0) = (row.floor() as usize, col.floor() as usize);
                Some(Tap {
                    index: (r0 * lines + c0) as u32,
                    row_weight: if r0 + 1 < rows {
                        ((row - r0 as f32) * 255.0) as u8
                    } else {
                        0
                    },
                    col_weight: if c0 + 1 < lines {
                        ((col - c0 as f32) * 255.0) as u8
                    } else {
                        0
                    },
                })
            })
            .collect();
        Self { taps }
    }

    /// Whether display pixel `p` shows the image (inside the fan).
    pub fn covers(&self, p: usize) -> bool {
        self.taps[p].is_some()
    }

    /// Converts a beam image (bilinear) and its mask (nearest) to display pixels.
    fn convert(
        &self,
        beam: &[u8],
        classes: &[u8],
        lines: usize,
        image: &mut [u8],
        mask: &mut [u8],
    ) {
        for ((tap, px), class) in self.taps.iter().zip(image.iter_mut()).zip(mask.iter_mut()) {
            let Some(t) = tap else {
                *px = 0;
                *class = 0;
                continue;
            };
            let i = t.index as usize;
            let (fr, fc) = (u32::from(t.row_weight), u32::from(t.col_weight));
            let at = |k: usize| u32::from(beam.get(k).copied().unwrap_or(0));
            let top = at(i) * (255 - fc) + at(i + 1) * fc;
            let bottom = at(i + lines) * (255 - fc) + at(i + lines + 1) * fc;
            *px = ((top * (255 - fr) + bottom * fr + 32512) / 65025) as u8;
            let nearest = i + usize::from(fr > 127) * lines + usize::from(fc > 127);
            *class = classes.get(nearest).copied().unwrap_or(classes[i]);
        }
    }
}

/// Complex Gaussian scatterer fields whose magnitude is the speckle.
#[derive(Debug, Clone)]
struct SpeckleField {
    re: Vec<f32>,
    im: Vec<f32>,
}

impl SpeckleField {
    fn new(len: usize, rng: &mut Pcg64Mcg) -> Self {
        Self {
            re: (0..len).map(|_| rng.sample(StandardNormal)).collect(),
            im: (0..len).map(|_| rng.sample(StandardNormal)).collect(),
        }
    }

    /// Speckle amplitude at (`row`, `col`) of a `rows × width` field: the
    /// magnitude of the 3×3-smoothed complex field, with unit mean power
    /// (Rayleigh distributed). Edges repeat the border samples.
    fn smoothed(&self, row: usize, col: usize, rows: usize, width: usize) -> f32 {
        let (mut re, mut im) = (0.0, 0.0);
        for (dr, wr) in SMOOTH.iter().enumerate() {
            let r = (row + dr).saturating_sub(1).min(rows - 1);
            for (dc, wc) in SMOOTH.iter().enumerate() {
                let c = (col + dc).saturating_sub(1).min(width - 1);
                let w = wr * wc;
                re += w * self.re[r * width + c];
                im += w * self.im[r * width + c];
            }
        }
        ((re * re + im * im) / SMOOTHED_POWER).sqrt()
    }

    /// Decorrelates the field by `1 - rho` while keeping its statistics.
    fn evolve(&mut self, rho: f32, rng: &mut Pcg64Mcg) {
        let fresh = (1.0 - rho * rho).sqrt();
        for v in self.re.iter_mut().chain(self.im.iter_mut()) {
            let n: f32 = rng.sample(StandardNormal);
            *v = rho * *v + fresh * n;
        }
    }
}

/// Draws the frames of one scene.
#[derive(Debug, Clone)]
pub struct FrameRenderer {
    scene: Scene,
    rows: usize,
    lines: usize,
    margin: usize,
    tissue: SpeckleField,
    lung: SpeckleField,
    converter: ScanConverter,
    jitter: (f32, f32),
    echo: Vec<f32>,
    /// The last displayed levels (for persistence), once there is a frame.
    levels: Vec<f32>,
    persisted: bool,
    /// Lateral sensitivity of the probe: strongest in the middle.
    apodization: Vec<f32>,
    beam: Vec<u8>,
    classes: Vec<u8>,
}

impl FrameRenderer {
    /// A renderer for `scene` on a `width × height` display.
    pub fn new(
        scene: Scene,
        probe: Probe,
        width: usize,
        height: usize,
        rng: &mut Pcg64Mcg,
    ) -> Self {
        let rows = height;
        let lines = (width / 2).max(8);
        let margin = (scene.sliding * lines as f32).ceil() as usize + 2;
        let fan = (rng.random_range(0.45..0.75), rng.random_range(0.5..0.7));
        Self {
            rows,
            lines,
            margin,
            tissue: SpeckleField::new(rows * lines, rng),
            lung: SpeckleField::new(rows * (lines + 2 * margin), rng),
            converter: ScanConverter::new(probe, width, height, rows, lines, fan),
            jitter: (0.0, 0.0),
            echo: vec![0.0; rows * lines],
            levels: vec![0.0; rows * lines],
            persisted: false,
            apodization: (0..lines)
                .map(|k| {
                    let x = (k as f32 + 0.5) / lines as f32 - 0.5;
                    1.0 - 1.6 * x * x
                })
                .collect(),
            beam: vec![0; rows * lines],
            classes: vec![0; rows * lines],
            scene,
        }
    }

    /// The scene being drawn.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The scan converter (which display pixels show the image).
    pub fn converter(&self) -> &ScanConverter {
        &self.converter
    }

    /// Renders frame `t` into `image` and `mask` (`width × height` each).
    pub fn render(&mut self, t: u64, rng: &mut Pcg64Mcg, image: &mut [u8], mask: &mut [u8]) {
        let s = &self.scene;
        let breath = TAU * t as f32 / s.breath_frames + s.breath_phase;
        let slide = s.sliding * breath.sin();
        let heave = s.heave * breath.sin();
        let jz: f32 = rng.sample(StandardNormal);
        let ju: f32 = rng.sample(StandardNormal);
        self.jitter = (
            0.8 * self.jitter.0 + s.jitter * jz,
            0.8 * self.jitter.1 + s.jitter * ju,
        );
        let (dz, du) = (heave + self.jitter.0, self.jitter.1);
        self.tissue.evolve(s.rho_tissue, rng);
        self.lung.evolve(s.rho_lung, rng);
        self.echo_map(t as f32, slide, dz, du);
        self.compress(slide);
        self.converter
            .convert(&self.beam, &self.classes, self.lines, image, mask);
    }

    /// Echogenicity and class of every beam sample.
    fn echo_map(&mut self, t: f32, slide: f32, dz: f32, du: f32) {
        let s = &self.scene;
        let (rows, lines) = (self.rows, self.lines);
        for k in 0..lines {
            let u = (k as f32 + 0.5) / lines as f32 + du;
            let ul = u + slide;
            let pleura = s.pleura_at(ul) + dz;
            let broken = s.pleura_broken_at(ul);
            let rib = s
                .ribs
                .iter()
                .find(|r| (u - r.u).abs() < r.half_width)
                .map(|r| r.z + dz - 0.01 * ((u - r.u) / r.half_width).powi(2));
            let mut b_line = 0.0;
            let mut b_cover = 0.0;
            for b in &s.b_lines {
                let profile = (-((ul - b.u) / b.width).powi(2)).exp();
                b_cover += profile;
                b_line += profile * b.intensity * (0.85 + 0.15 * (b.phase + 0.2 * t).sin());
            }
            let consolidation = s.consolidations.iter().find_map(|c| {
                let x = (ul - c.u) / c.half_width;
                (x.abs() < 1.0).then(|| {
                    let ragged = 0.15 * (ul * 157.0 + c.u * 31.0).sin() * c.depth;
                    (c, c.depth * (1.0 - x * x).sqrt() + ragged)
                })
            });
            let effusion = s
                .effusion
                .filter(|e| (e.u0..e.u1).contains(&ul))
                .map_or(0.0, |e| e.thickness);
            for i in 0..rows {
                let z = (i as f32 + 0.5) / rows as f32;
                let (echo, class) = match rib {
                    Some(rz) if z >= rz => (if z < rz + 0.012 { 0.5 } else { SHADOW }, 0),
                    _ if z < pleura => (tissue(s, z - dz, k), 0),
                    _ if z < pleura + s.pleura_thickness && !broken => (s.pleura_level, 0),
                    _ => {
                        let zl = z - pleura;
                        if zl < effusion {
                            (ANECHOIC, 0)
                        } else {
                            let zl = zl - effusion;
                            lung(
                                s,
                                z,
                                zl,
                                pleura,
                                b_line,
                                b_cover,
                                consolidation.map(|(c, d)| (c, d, ul)),
                            )
                        }
                    }
                };
                self.echo[i * lines + k] = echo;
                self.classes[i * lines + k] = class;
            }
        }
    }

    /// Speckle, gain and log compression: echo map → 8-bit beam image.
    fn compress(&mut self, slide: f32) {
        let s = &self.scene;
        let (rows, lines, margin) = (self.rows, self.lines, self.margin);
        let wide = lines + 2 * margin;
        let shift = (slide * lines as f32).round() as isize;
        let range = s.dynamic_range_db;
        let persisted = std::mem::replace(&mut self.persisted, true);
        for i in 0..rows {
            let z = (i as f32 + 0.5) / rows as f32;
            let gain_db = s.gain_db - s.attenuation_db * z * (1.0 - s.tgc);
            // Below the pleura the scatterers slide with the lung.
            let lung_from = (s.pleura_z * rows as f32) as usize;
            for (k, &apodization) in self.apodization.iter().enumerate() {
                let (field, col, width) = if i >= lung_from {
                    let col = (k as isize + margin as isize + shift).clamp(0, wide as isize - 1);
                    (&self.lung, col as usize, wide)
                } else {
                    (&self.tissue, k, lines)
                };
                let speckle = field.smoothed(i, col, rows, width);
                let echo = self.echo[i * lines + k] * speckle * apodization;
                let db = 20.0 * echo.max(1e-6).log10() + gain_db;
                let level = (1.0 + db / range).clamp(0.0, 1.0) * 255.0;
                // Persistence: scanners average successive frames.
                let at = i * lines + k;
                let shown = match persisted {
                    true => PERSISTENCE * self.levels[at] + (1.0 - PERSISTENCE) * level,
                    false => level,
                };
                self.levels[at] = shown;
                self.beam[at] = shown as u8;
            }
        }
    }
}

/// Soft tissue above the pleura at depth `z` on scan line `k`.
fn tissue(s: &Scene, z: f32, k: usize) -> f32 {
    let layer = s.layers.iter().find(|l| z < l.z_end).or(s.layers.last());
    layer.map_or(0.1, |l| {
        let fibres =
            (z * 173.0 + (k as f32 * 0.05).sin() * 3.0).sin() * (z * 61.0 + k as f32 * 0.013).sin();
        l.level * (1.0 + l.striation * fibres)
    })
}

/// The lung below the pleura: aerated with A- and B-lines, or consolidated.
fn lung(
    s: &Scene,
    z: f32,
    zl: f32,
    pleura: f32,
    b_line: f32,
    b_cover: f32,
    consolidation: Option<(&super::scene::Consolidation, f32, f32)>,
) -> (f32, u8) {
    let fade = (1.0 - 0.5 * zl).max(0.2);
    if let Some((c, depth, ul)) = consolidation {
        if zl < depth {
            let bronchus = c.bronchograms.iter().any(|&(bu, bz, len, slope)| {
                let along = ul - bu;
                along.abs() < len && (zl - bz - slope * along).abs() < 0.006
            });
            let echo = if bronchus { 0.5 } else { CONSOLIDATED };
            return (echo, CLASS_CONSOLIDATION);
        }
        if zl < depth + 0.012 {
            // The irregular deep border ("shred sign").
            return (0.3, CLASS_CONSOLIDATION);
        }
    }
    let clear = (1.0 - b_cover).clamp(0.0, 1.0);
    let mut echo = s.lung_level * fade + s.white_lung * fade;
    let mut k = 2.0;
    while k * pleura < 1.0 + pleura {
        let a = s.a_lines * 0.6f32.powf(k - 2.0);
        let d = (z - k * pleura) / (s.pleura_thickness * 0.8);
        echo += a * (-d * d).exp() * clear;
        k += 1.0;
    }
    // Confluent B-lines saturate rather than add up.
    echo += b_line.min(MAX_B_LINE) * (1.0 - 0.3 * zl);
    let class = if b_cover > B_LINE_MASK_LEVEL {
        CLASS_B_LINE
    } else {
        0
    };
    (echo, class)
}
