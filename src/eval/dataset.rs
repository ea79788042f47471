//! The two development datasets and their labels.
//!
//! * **BLUES** (COVID-BLUES): `severity.csv` beside a `videos/` folder (or
//!   the clips themselves), one row per clip `patient_<id>_<zone>`, or
//!   `patient_<id>_<zone>_<n>` for the n-th recording of a zone
//!   ([`BluesName`]). The group is the patient, whatever the recording.
//! * **POCUS** (Born et al., severity by Gare et al.): `labels.csv` with one
//!   row per file; no patient ids, so clips are grouped by name stem.
//!
//! The group of a clip is the unit of every split: no patient (or name
//! stem) is ever on both sides of a train/test split.

use super::findings::{self, Findings};
use crate::spec::{Named, SpecError};
use std::path::{Path, PathBuf};

/// Which dataset layout to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// COVID-BLUES.
    Blues,
    /// The POCUS collection.
    Pocus,
}

impl Named for DatasetKind {
    const WHAT: &'static str = "dataset";
    const NAMES: &'static [(&'static str, Self)] =
        &[("blues", Self::Blues), ("pocus", Self::Pocus)];
}

impl std::str::FromStr for DatasetKind {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

/// One labelled clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipRecord {
    /// File stem, unique within the dataset.
    pub name: String,
    /// Path of the clip.
    pub path: PathBuf,
    /// Patient (BLUES) or name stem (POCUS): the unit of splitting.
    pub group: String,
    /// Chest zone (BLUES: L1–L3, R1–R3).
    pub zone: Option<String>,
    /// Which recording of its zone this is, from 2 on (BLUES `_2`); `None`
    /// for the first.
    pub repeat: Option<u32>,
    /// Expert Soldati score 0–3, where rated.
    pub score: Option<u8>,
    /// The experts' findings (unknown where they did not say).
    pub findings: Findings,
    /// `convex` or `linear`.
    pub probe: String,
}

/// Why a dataset could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The label file is missing or unreadable.
    #[error("{path}: {reason}")]
    Labels {
        /// The label file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Lists the clips of a dataset folder with their labels. Rows whose clip
/// file is absent are still listed, so the evaluation can count them as
/// skipped.
pub fn list_clips(kind: DatasetKind, dir: &Path) -> Result<Vec<ClipRecord>, DatasetError> {
    match kind {
        DatasetKind::Blues => list_blues(dir),
        DatasetKind::Pocus => list_pocus(dir),
    }
}

fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), DatasetError> {
    let fail = |reason: String| DatasetError::Labels {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| fail(e.to_string()))?;
    let headers = reader.headers().map_err(|e| fail(e.to_string()))?.clone();
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    Ok((headers, rows))
}

fn column(headers: &csv::StringRecord, name: &str, path: &Path) -> Result<usize, DatasetError> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| DatasetError::Labels {
            path: path.to_path_buf(),
            reason: format!("no '{name}' column"),
        })
}

fn yes_no(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "1" | "1.0" | "true" => Some(true),
        "no" | "0" | "0.0" | "false" => Some(false),
        _ => None,
    }
}

fn parse_score(value: &str) -> Option<u8> {
    let v: f32 = value.trim().parse().ok()?;
    (0.0..=3.0).contains(&v).then(|| v.round() as u8)
}

fn list_blues(dir: &Path) -> Result<Vec<ClipRecord>, DatasetError> {
    let csv_path = dir.join("severity.csv");
    let (headers, rows) = read_csv(&csv_path)?;
    let [file, score, a_lines, b_lines, comments] = [
        "video_file",
        "Severity Score",
        "A-lines",
        "B-lines",
        "comments",
    ]
    .map(|c| column(&headers, c, &csv_path));
    let (file, score, a_lines, b_lines, comments) = (file?, score?, a_lines?, b_lines?, comments?);
    let videos = if dir.join("videos").is_dir() {
        dir.join("videos")
    } else {
        dir.to_path_buf()
    };
    Ok(rows
        .iter()
        .map(|row| {
            let name = row
                .get(file)
                .unwrap_or("")
                .trim()
                .trim_end_matches(".mp4")
                .to_string();
            let parsed = BluesName::parse(&name);
            let comment_findings = findings::from_comment(row.get(comments).unwrap_or(""));
            ClipRecord {
                path: videos.join(format!("{name}.mp4")),
                group: parsed.patient,
                zone: parsed.zone,
                repeat: parsed.repeat,
                score: parse_score(row.get(score).unwrap_or("")),
                findings: Findings {
                    a_lines: yes_no(row.get(a_lines).unwrap_or("")),
                    b_lines: yes_no(row.get(b_lines).unwrap_or("")),
                    ..comment_findings
                },
                probe: "convex".into(),
                name,
            }
        })
        .collect())
}

fn list_pocus(dir: &Path) -> Result<Vec<ClipRecord>, DatasetError> {
    let csv_path = dir.join("labels.csv");
    let (headers, rows) = read_csv(&csv_path)?;
    let [file, probe, severity] =
        ["file", "probe", "severity"].map(|c| column(&headers, c, &csv_path));
    let (file, probe, severity) = (file?, probe?, severity?);
    // Finding columns are optional: a missing one leaves that finding unknown.
    let flag = |name: &str| headers.iter().position(|h| h.trim() == name);
    let [
        effusion,
        consolidations,
        b_lines,
        a_lines,
        pleura,
        bronchogram,
    ] = [
        "effusion",
        "consolidations",
        "b_lines",
        "a_lines",
        "pleural_irregularities",
        "air_bronchogram",
    ]
    .map(flag);
    Ok(rows
        .iter()
        .map(|row| {
            let rel = row.get(file).unwrap_or("").trim();
            let name = Path::new(rel)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let value = |col: Option<usize>| col.and_then(|c| yes_no(row.get(c).unwrap_or("")));
            ClipRecord {
                path: dir.join(rel),
                group: name_stem(&name),
                zone: None,
                repeat: None,
                score: parse_score(row.get(severity).unwrap_or("")),
                findings: Findings {
                    a_lines: value(a_lines),
                    b_lines: value(b_lines),
                    consolidation: value(consolidations),
                    pleura_abnormal: value(pleura),
                    white_lung: None,
                    effusion: value(effusion),
                    air_bronchogram: value(bronchogram),
                },
                probe: row.get(probe).unwrap_or("").trim().to_string(),
                name,
            }
        })
        .collect())
}

/// A BLUES clip name taken apart: `patient_<id>_<zone>[_<n>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BluesName {
    /// `patient_<id>`: the unit of splitting and of the exam.
    pub patient: String,
    /// The BLUE point, upper case (`L1`–`L3`, `R1`–`R3`).
    pub zone: Option<String>,
    /// The recording's number within its zone, from 2 on; `None` for the
    /// first.
    pub repeat: Option<u32>,
}

impl BluesName {
    /// Parses a clip name (with or without `.mp4`, stray spaces and any
    /// case). A name that does not follow the pattern is its own patient,
    /// with no zone.
    pub fn parse(name: &str) -> Self {
        let name = name.trim();
        let stem = name
            .strip_suffix(".mp4")
            .or_else(|| name.strip_suffix(".MP4"))
            .unwrap_or(name);
        let parts: Vec<&str> = stem.split('_').map(str::trim).collect();
        let is_zone = |z: &str| {
            let z = z.as_bytes();
            z.len() == 2 && matches!(z[0], b'L' | b'R' | b'l' | b'r') && z[1].is_ascii_digit()
        };
        let parsed = match parts.as_slice() {
            [p, id, zone] if is_zone(zone) => Some((p, id, zone, None)),
            [p, id, zone, n] if is_zone(zone) => n
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 2)
                .map(|n| (p, id, zone, Some(n))),
            _ => None,
        };
        let patient = |p: &str, id: &str| {
            let id = id.parse::<u32>().ok()?;
            p.eq_ignore_ascii_case("patient")
                .then(|| format!("patient_{id}"))
        };
        match parsed.and_then(|(p, id, zone, repeat)| Some((patient(p, id)?, zone, repeat))) {
            Some((patient, zone, repeat)) => Self {
                patient,
                zone: Some(zone.to_ascii_uppercase()),
                repeat,
            },
            None => Self {
                patient: stem.to_string(),
                zone: None,
                repeat: None,
            },
        }
    }
}

/// The name stem shared by clips of one source and patient:
/// `Reg_pat1Image_132943` → `reg_pat1image`,
/// `Reg_Image_181602_trimmed_crop` → `reg_image`.
pub fn name_stem(name: &str) -> String {
    let mut stem = name.to_ascii_lowercase();
    loop {
        let before = stem.len();
        for suffix in ["_crop", "_trimmed"] {
            if let Some(s) = stem.strip_suffix(suffix) {
                stem = s.to_string();
            }
        }
        stem = stem
            .trim_end_matches(|c: char| c.is_ascii_digit() || "_-+() ".contains(c))
            .to_string();
        if stem.len() == before {
            return stem;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pocus_clips_of_one_patient_share_a_stem() {
        assert_eq!(name_stem("Reg_pat1Image_132943"), "reg_pat1image");
        assert_eq!(name_stem("Reg_pat1Image_133043"), "reg_pat1image");
        assert_eq!(name_stem("Reg_Image_181602_trimmed_crop"), "reg_image");
        assert_eq!(name_stem("Reg_Image_182340_crop"), "reg_image");
        assert_eq!(name_stem("Cov-Atlas+(44)"), "cov-atlas");
        assert_ne!(name_stem("Reg_pat1Image_1"), name_stem("Reg_pat2Image_1"));
    }

    #[test]
    fn a_second_recording_of_a_zone_belongs_to_the_same_patient() {
        let first = BluesName::parse("patient_3_R2");
        let second = BluesName::parse("patient_3_R2_2");
        assert_eq!(first.patient, "patient_3");
        assert_eq!(second.patient, "patient_3");
        assert_eq!(second.zone.as_deref(), Some("R2"));
        assert_eq!((first.repeat, second.repeat), (None, Some(2)));
    }

    #[test]
    fn blues_names_tolerate_extensions_spaces_and_case() {
        for name in [
            "patient_51_L1_2.mp4",
            " patient_51_L1_2 ",
            "Patient_51_l1_2",
        ] {
            let parsed = BluesName::parse(name);
            assert_eq!(parsed.patient, "patient_51", "{name}");
            assert_eq!(parsed.zone.as_deref(), Some("L1"), "{name}");
            assert_eq!(parsed.repeat, Some(2), "{name}");
        }
        assert_eq!(BluesName::parse("patient_7_R3").repeat, None);
    }

    #[test]
    fn a_name_off_the_pattern_is_its_own_group_without_a_zone() {
        for name in ["clip", "patient_x_L1", "patient_4_X9", "patient_4_L1_b"] {
            let parsed = BluesName::parse(name);
            assert_eq!(parsed.patient, name, "{name}");
            assert_eq!(parsed.zone, None, "{name}");
        }
    }

    #[test]
    fn yes_no_tolerates_spaces_and_digits() {
        assert_eq!(yes_no("yes "), Some(true));
        assert_eq!(yes_no("0"), Some(false));
        assert_eq!(yes_no(""), None);
    }

    #[test]
    fn scores_outside_soldati_range_are_unlabelled() {
        assert_eq!(parse_score("2.0"), Some(2));
        assert_eq!(parse_score("7"), None);
        assert_eq!(parse_score(""), None);
    }
}
