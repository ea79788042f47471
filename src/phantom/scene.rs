//! What a phantom clip shows, drawn once per clip from the seed: the
//! anatomy above the pleura, the pleural line, and the pathology below it
//! for the chosen Soldati score.
//!
//! Positions are normalized: `z` is depth as a fraction of the imaging
//! depth (0 at the probe), `u` the lateral position as a fraction of the
//! image width (0 at the left edge). Lung features live in lung
//! coordinates, which slide sideways with breathing.

use super::Probe;
use rand::RngExt;
use rand_pcg::Pcg64Mcg;
use std::f32::consts::TAU;

/// A band of soft tissue above the pleura.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Layer {
    /// Depth where the layer ends.
    pub z_end: f32,
    /// Mean echogenicity.
    pub level: f32,
    /// Strength of the horizontal striation (muscle fibres).
    pub striation: f32,
}

/// A rib: a bright arc with a full acoustic shadow below it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rib {
    /// Lateral centre.
    pub u: f32,
    /// Half width.
    pub half_width: f32,
    /// Depth of the rib surface.
    pub z: f32,
}

/// A B-line: a vertical comet tail from the pleura to the bottom.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BLine {
    /// Lateral centre, in lung coordinates.
    pub u: f32,
    /// Lateral half width (1/e of the profile).
    pub width: f32,
    /// Peak echogenicity.
    pub intensity: f32,
    /// Phase of its flicker over time.
    pub phase: f32,
}

/// A consolidation under the pleura: hypoechoic, tissue-like lung.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Consolidation {
    /// Lateral centre, in lung coordinates.
    pub u: f32,
    /// Lateral half width.
    pub half_width: f32,
    /// How deep it reaches below the pleura.
    pub depth: f32,
    /// Air bronchograms: bright short segments `(u, z below pleura, length, slope)`.
    pub bronchograms: Vec<(f32, f32, f32, f32)>,
}

/// An anechoic pleural effusion over a lateral range, above the lung.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Effusion {
    /// Left edge.
    pub u0: f32,
    /// Right edge.
    pub u1: f32,
    /// Thickness of the fluid.
    pub thickness: f32,
}

/// Everything a phantom clip shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scene {
    /// Soft-tissue layers, top to bottom, ending at the pleura.
    pub layers: Vec<Layer>,
    /// Mean pleural depth.
    pub pleura_z: f32,
    /// Thickness of the pleural line.
    pub pleura_thickness: f32,
    /// Echogenicity of the pleural line.
    pub pleura_level: f32,
    /// Irregularity of the pleural line: `(amplitude, spatial frequency, phase)`.
    pub pleura_waves: Vec<(f32, f32, f32)>,
    /// Gaps in the pleural line `(u, half width)`, in lung coordinates.
    pub pleura_breaks: Vec<(f32, f32)>,
    /// Ribs.
    pub ribs: Vec<Rib>,
    /// Strength of the A-lines (0 = none).
    pub a_lines: f32,
    /// Echogenicity of aerated lung between the artifacts.
    pub lung_level: f32,
    /// Extra diffuse brightness of the lung (white lung).
    pub white_lung: f32,
    /// B-lines.
    pub b_lines: Vec<BLine>,
    /// Consolidations.
    pub consolidations: Vec<Consolidation>,
    /// Pleural effusion, if any.
    pub effusion: Option<Effusion>,
    /// Breathing period in frames.
    pub breath_frames: f32,
    /// Breathing phase at frame 0.
    pub breath_phase: f32,
    /// Lateral excursion of the lung with breathing (lung sliding).
    pub sliding: f32,
    /// Axial excursion of everything with breathing.
    pub heave: f32,
    /// Standard deviation of the probe jitter per frame.
    pub jitter: f32,
    /// Overall gain in dB.
    pub gain_db: f32,
    /// Attenuation over the imaging depth in dB, and the share the TGC compensates.
    pub attenuation_db: f32,
    /// Share of the attenuation that the time-gain compensation undoes.
    pub tgc: f32,
    /// Display dynamic range in dB.
    pub dynamic_range_db: f32,
    /// Frame-to-frame speckle correlation in tissue and in lung.
    pub rho_tissue: f32,
    /// Frame-to-frame speckle correlation in the lung.
    pub rho_lung: f32,
}

impl Scene {
    /// Draws a scene of Soldati score `score` (0–3) for `probe`.
    pub fn draw(score: u8, probe: Probe, rng: &mut Pcg64Mcg) -> Self {
        let mut r = |lo: f32, hi: f32| rng.random_range(lo..hi);
        let pleura_z = match probe {
            Probe::Convex => r(0.16, 0.30),
            Probe::Linear => r(0.14, 0.26),
        };
        let skin = r(0.015, 0.03);
        let fat = skin + (pleura_z - skin) * r(0.25, 0.5);
        let layers = vec![
            Layer {
                z_end: skin,
                level: r(0.2, 0.3),
                striation: 0.0,
            },
            Layer {
                z_end: fat,
                level: r(0.04, 0.07),
                striation: r(0.1, 0.3),
            },
            Layer {
                z_end: pleura_z,
                level: r(0.09, 0.16),
                striation: r(0.3, 0.6),
            },
        ];
        let mut scene = Scene {
            layers,
            pleura_z,
            pleura_thickness: r(0.012, 0.022),
            pleura_level: r(0.6, 1.0),
            pleura_waves: Vec::new(),
            pleura_breaks: Vec::new(),
            ribs: Vec::new(),
            a_lines: 0.0,
            lung_level: r(0.06, 0.1),
            white_lung: 0.0,
            b_lines: Vec::new(),
            consolidations: Vec::new(),
            effusion: None,
            breath_frames: r(75.0, 125.0),
            breath_phase: r(0.0, TAU),
            sliding: r(0.008, 0.025),
            heave: r(0.002, 0.008),
            jitter: r(0.0005, 0.002),
            gain_db: r(-23.0, -17.0),
            attenuation_db: r(16.0, 24.0),
            tgc: r(0.3, 0.5),
            dynamic_range_db: r(50.0, 60.0),
            rho_tissue: r(0.85, 0.95),
            rho_lung: r(0.4, 0.7),
        };
        scene.draw_ribs(probe, rng);
        scene.draw_pathology(score, rng);
        scene
    }

    fn draw_ribs(&mut self, probe: Probe, rng: &mut Pcg64Mcg) {
        let ribs = match probe {
            Probe::Convex => rng.random_range(0..=2),
            Probe::Linear => rng.random_range(0..=1),
        };
        let spots = [rng.random_range(0.02..0.18), rng.random_range(0.82..0.98)];
        for &u in spots.iter().take(ribs) {
            let u = if ribs == 1 && rng.random_bool(0.5) {
                1.0 - u
            } else {
                u
            };
            self.ribs.push(Rib {
                u,
                half_width: rng.random_range(0.06..0.12),
                z: self.pleura_z - rng.random_range(0.01..0.04),
            });
        }
    }

    fn draw_pathology(&mut self, score: u8, rng: &mut Pcg64Mcg) {
        let mut r = |lo: f32, hi: f32| rng.random_range(lo..hi);
        let wave = |r: &mut dyn FnMut(f32, f32) -> f32, amplitude: f32| {
            (amplitude * r(0.5, 1.0), r(6.0, 40.0), r(0.0, TAU))
        };
        // The pleural line: regular (0), indented (1), broken (2, 3).
        let roughness = [0.0015, 0.006, 0.01, 0.014][usize::from(score.min(3))];
        self.pleura_waves = (0..3).map(|_| wave(&mut r, roughness)).collect();
        self.a_lines =
            [r(0.15, 0.35), r(0.06, 0.15), r(0.03, 0.08), 0.0][usize::from(score.min(3))];
        let b_line = |r: &mut dyn FnMut(f32, f32) -> f32, lo: f32, hi: f32, level: f32| BLine {
            u: r(-0.05, 1.05),
            width: r(lo, hi),
            intensity: level * r(0.7, 1.3),
            phase: r(0.0, TAU),
        };
        match score {
            0 => {
                // A normal lung may show one or two isolated B-lines.
                let count = if r(0.0, 1.0) < 0.75 {
                    1 + (r(0.0, 1.0) < 0.4) as usize
                } else {
                    0
                };
                self.b_lines = (0..count)
                    .map(|_| b_line(&mut r, 0.01, 0.02, 0.15))
                    .collect();
            }
            1 => {
                self.lung_level *= 0.8;
                let count = 3 + (r(0.0, 4.0) as usize);
                self.b_lines = (0..count)
                    .map(|_| b_line(&mut r, 0.01, 0.025, 0.2))
                    .collect();
            }
            2 => {
                self.attenuation_db += r(2.0, 6.0);
                self.lung_level *= 0.75;
                let count = 3 + (r(0.0, 4.0) as usize);
                self.b_lines = (0..count)
                    .map(|_| b_line(&mut r, 0.012, 0.04, 0.2))
                    .collect();
                self.b_lines.push(b_line(&mut r, 0.05, 0.1, 0.14));
                self.pleura_breaks = (0..1 + (r(0.0, 3.0) as usize))
                    .map(|_| (r(0.05, 0.95), r(0.01, 0.04)))
                    .collect();
                let count = 1 + (r(0.0, 3.0) as usize);
                self.consolidations = (0..count)
                    .map(|_| consolidation(&mut r, (0.03, 0.07), (0.04, 0.12)))
                    .collect();
            }
            _ => {
                // Fluid-filled lung attenuates more.
                self.attenuation_db += r(8.0, 12.0);
                self.white_lung = r(0.0, 0.02);
                self.lung_level *= 0.6;
                self.b_lines = (0..2 + (r(0.0, 3.0) as usize))
                    .map(|_| b_line(&mut r, 0.04, 0.12, 0.12))
                    .collect();
                self.pleura_breaks = (0..2 + (r(0.0, 3.0) as usize))
                    .map(|_| (r(0.05, 0.95), r(0.01, 0.05)))
                    .collect();
                let count = r(0.0, 3.0) as usize;
                self.consolidations = (0..count)
                    .map(|_| consolidation(&mut r, (0.03, 0.08), (0.04, 0.14)))
                    .collect();
                if r(0.0, 1.0) < 0.6 {
                    self.consolidations
                        .push(consolidation(&mut r, (0.1, 0.25), (0.15, 0.4)));
                }
            }
        }
        if score >= 2 && r(0.0, 1.0) < 0.15 {
            let u0 = r(0.0, 0.6);
            self.effusion = Some(Effusion {
                u0,
                u1: u0 + r(0.2, 0.4),
                thickness: r(0.03, 0.08),
            });
        }
    }

    /// Depth of the pleural line at lung position `u`.
    pub fn pleura_at(&self, u: f32) -> f32 {
        self.pleura_z
            + self
                .pleura_waves
                .iter()
                .map(|&(a, f, p)| a * (f * u * TAU / 4.0 + p).sin())
                .sum::<f32>()
    }

    /// Whether the pleural line is broken at lung position `u`.
    pub fn pleura_broken_at(&self, u: f32) -> bool {
        self.pleura_breaks.iter().any(|&(c, hw)| (u - c).abs() < hw)
    }
}

/// A consolidation with half width and depth drawn from the given ranges.
fn consolidation(
    r: &mut dyn FnMut(f32, f32) -> f32,
    half_width: (f32, f32),
    depth: (f32, f32),
) -> Consolidation {
    let u = r(0.1, 0.9);
    let half_width = r(half_width.0, half_width.1);
    let depth = r(depth.0, depth.1);
    let count = (depth * 40.0) as usize + 1;
    let bronchograms = (0..count)
        .map(|_| {
            (
                u + r(-0.7, 0.7) * half_width,
                r(0.15, 0.8) * depth,
                r(0.01, 0.04),
                r(-0.6, 0.6),
            )
        })
        .collect();
    Consolidation {
        u,
        half_width,
        depth,
        bronchograms,
    }
}
