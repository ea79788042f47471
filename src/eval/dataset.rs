//! The two development datasets and their labels.
//!
//! * **BLUES** (COVID-BLUES): `severity.csv` beside a `videos/` folder (or
//!   the clips themselves), one row per clip `patient_<id>_<zone>`.
//! * **POCUS** (Born et al., severity by Gare et al.): `labels.csv` with one
//!   row per file; no patient ids, so clips are grouped by name stem.
//!
//! The group of a clip is the unit of every split: no patient (or name
//! stem) is ever on both sides of a train/test split.

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

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blues" => Ok(Self::Blues),
            "pocus" => Ok(Self::Pocus),
            other => Err(format!("unknown dataset '{other}' (use blues or pocus)")),
        }
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
    /// Expert Soldati score 0–3, where rated.
    pub score: Option<u8>,
    /// B-lines present, where annotated.
    pub b_lines: Option<bool>,
    /// Consolidation present, where annotated.
    pub consolidation: Option<bool>,
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
    let [file, score, b_lines, comments] = ["video_file", "Severity Score", "B-lines", "comments"]
        .map(|c| column(&headers, c, &csv_path));
    let (file, score, b_lines, comments) = (file?, score?, b_lines?, comments?);
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
            let (group, zone) = match name.rsplit_once('_') {
                Some((patient, zone)) => (patient.to_string(), Some(zone.to_string())),
                None => (name.clone(), None),
            };
            let comment = row.get(comments).unwrap_or("").to_ascii_lowercase();
            ClipRecord {
                path: videos.join(format!("{name}.mp4")),
                group,
                zone,
                score: parse_score(row.get(score).unwrap_or("")),
                b_lines: yes_no(row.get(b_lines).unwrap_or("")),
                consolidation: Some(comment.contains("consolid")),
                probe: "convex".into(),
                name,
            }
        })
        .collect())
}

fn list_pocus(dir: &Path) -> Result<Vec<ClipRecord>, DatasetError> {
    let csv_path = dir.join("labels.csv");
    let (headers, rows) = read_csv(&csv_path)?;
    let [file, probe, severity, b_lines, consolidations] =
        ["file", "probe", "severity", "b_lines", "consolidations"]
            .map(|c| column(&headers, c, &csv_path));
    let (file, probe, severity, b_lines, consolidations) =
        (file?, probe?, severity?, b_lines?, consolidations?);
    Ok(rows
        .iter()
        .map(|row| {
            let rel = row.get(file).unwrap_or("").trim();
            let name = Path::new(rel)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            ClipRecord {
                path: dir.join(rel),
                group: name_stem(&name),
                zone: None,
                score: parse_score(row.get(severity).unwrap_or("")),
                b_lines: yes_no(row.get(b_lines).unwrap_or("")),
                consolidation: yes_no(row.get(consolidations).unwrap_or("")),
                probe: row.get(probe).unwrap_or("").trim().to_string(),
                name,
            }
        })
        .collect())
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
