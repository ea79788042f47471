//! A finished exam as the hospital gets it: `pleura send --out` writes its
//! DICOM objects and HL7 message from the journal and the zone clips alone,
//! and real DICOM tools judge them: every object passes dicom3tools'
//! `dciodvfy` with no error, dcmtk's `dsrdump` reads the report, and
//! `dcmdump` finds the worklist identity in every object.

mod common;

use common::{pleura, succeed};
#[path = "common/hospital.rs"]
#[allow(dead_code)]
mod fixtures;

use fixtures::{Zone, clip, scheduled};
use pleura::exam::{ExamIdentity, Journal, Protocol};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The scheduled patient of these exams.
fn patient() -> ExamIdentity {
    scheduled("MRN-12345", "ACC-42", "1.2.826.0.1.3680043.10.543.42")
}

/// A finished BLUE exam of the scheduled patient: R-up scored 2 with
/// B-lines, R-low 0, R-PLAPS 3 whose clip was never saved (a full disk);
/// the total is 5.
fn finished_exam(dir: &Path) -> PathBuf {
    let zones = vec![
        Zone {
            score: 2,
            findings: Some([0.1, 0.9, 0.2, 0.7]),
            clip: Some(clip(12, 64, 48)),
        },
        Zone {
            score: 0,
            findings: None,
            clip: Some(clip(5, 64, 48)),
        },
        Zone {
            score: 3,
            findings: None,
            clip: None,
        },
    ];
    fixtures::finished_exam(dir, Protocol::Blue6, patient(), zones)
}

fn send_out(journal: &Path, out: &Path) -> Output {
    succeed(
        pleura()
            .args(["send", "--station-ae", "ICU-US-3"])
            .arg(journal)
            .arg("--out")
            .arg(out),
    )
}

/// Runs a host tool, naming the package to install when it is missing.
fn tool(program: &str, package: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} does not run ({e}): install Debian's {package} (scripts/setup does)")
        });
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_object_of_an_exam_passes_dciodvfy_and_carries_the_patient() {
    let dir = tempfile::tempdir().unwrap();
    let journal = finished_exam(dir.path());
    let out = dir.path().join("out");
    let sent = send_out(&journal, &out);
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert!(
        stderr.contains("zone R-PLAPS was recorded without a saved clip"),
        "{stderr}"
    );
    let files = dicom_files(&out);
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "report.dcm",
            "summary.dcm",
            "zone-R-low.dcm",
            "zone-R-up.dcm"
        ]
    );
    for file in &files {
        let verdict = tool("dciodvfy", "dicom3tools", &[file.as_os_str()]);
        let errors: Vec<_> = verdict.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        let dump = tool(
            "dcmdump",
            "dcmtk",
            &[
                "+P".as_ref(),
                "0010,0020".as_ref(),
                "+P".as_ref(),
                "0008,0050".as_ref(),
                "+P".as_ref(),
                "0020,000d".as_ref(),
                file.as_os_str(),
            ],
        );
        for value in ["[MRN-12345]", "[ACC-42]", "[1.2.826.0.1.3680043.10.543.42]"] {
            assert!(
                dump.contains(value),
                "{}: no {value} in\n{dump}",
                file.display()
            );
        }
    }
    let clip = tool(
        "dcmdump",
        "dcmtk",
        &[
            "+P".as_ref(),
            "0028,0008".as_ref(),
            "+P".as_ref(),
            "0018,1063".as_ref(),
            out.join("zone-R-up.dcm").as_os_str(),
        ],
    );
    assert!(clip.contains("[12]") && clip.contains("[40.000]"), "{clip}");
}

#[test]
fn the_report_holds_each_zone_score_the_findings_the_total_and_the_clips() {
    let dir = tempfile::tempdir().unwrap();
    let journal = finished_exam(dir.path());
    let out = dir.path().join("out");
    send_out(&journal, &out);
    let report = tool("dsrdump", "dcmtk", &[out.join("report.dcm").as_os_str()]);
    assert!(report.contains("Comprehensive SR Document"), "{report}");
    assert!(report.contains("(1500") || report.contains("Imaging Measurement Report"));
    let scores: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("\"Lung ultrasound zone score\")="))
        .collect();
    assert_eq!(scores.len(), 3, "{report}");
    for (line, score) in scores.iter().zip(["\"2\"", "\"0\"", "\"3\""]) {
        assert!(line.contains(score), "{line}");
    }
    assert!(
        report.contains("\"Lung ultrasound score\")=\"5\""),
        "{report}"
    );
    assert!(report.contains("(BLINES,99PLEURA,\"B-lines\")"), "{report}");
    assert!(report.contains("(24028007,SCT,\"Right\")"), "{report}");
    assert_eq!(
        report
            .matches("\"Algorithm Version\")=\"lusnet-test.gguf\"")
            .count(),
        3,
        "each zone names the model the journal says scored it:\n{report}"
    );
    assert_eq!(
        report
            .matches("\"Source of Measurement\")=(USm image")
            .count(),
        2,
        "the two zones with a clip reference it:\n{report}"
    );
}

#[test]
fn the_hl7_result_has_one_obx_per_zone_and_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let journal = finished_exam(dir.path());
    let out = dir.path().join("out");
    send_out(&journal, &out);
    let message = std::fs::read_to_string(out.join("result.hl7")).unwrap();
    let segments: Vec<&str> = message.split('\r').filter(|s| !s.is_empty()).collect();
    assert!(
        segments[0].starts_with("MSH|^~\\&|PLEURA|ICU-US-3|"),
        "{message}"
    );
    assert!(segments[0].contains("|ORU^R01^ORU_R01|"));
    assert!(segments[1].starts_with("PID|1||MRN-12345^^^^MR||DOE^JANE||19700101|F"));
    assert!(segments[2].starts_with("OBR|1||ACC-42|"));
    let obx: Vec<Vec<&str>> = segments
        .iter()
        .filter(|s| s.starts_with("OBX|"))
        .map(|s| s.split('|').collect())
        .collect();
    let zones: Vec<(&str, &str)> = obx.iter().map(|f| (f[4], f[5])).collect();
    assert_eq!(
        zones,
        [
            ("R-up", "2"),
            ("R-low", "0"),
            ("R-PLAPS", "3"),
            ("BLUE", "5")
        ]
    );
}

#[test]
fn sending_again_makes_the_same_instances_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let journal = finished_exam(dir.path());
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    send_out(&journal, &first);
    send_out(&journal, &second);
    for file in dicom_files(&first)
        .into_iter()
        .chain([first.join("result.hl7")])
    {
        let again = second.join(file.file_name().unwrap());
        assert_eq!(
            std::fs::read(&file).unwrap(),
            std::fs::read(&again).unwrap(),
            "{} differs",
            file.display()
        );
    }
}

#[test]
fn an_unfinished_or_a_pre_identity_exam_is_not_sent_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exam.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    journal.start(Protocol::Blue6, patient()).unwrap();
    let send = |path: &Path| {
        pleura()
            .arg("send")
            .arg(path)
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap()
    };
    let output = send(&path);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("exam.jsonl") && stderr.contains("not finished"),
        "{stderr}"
    );

    let old = dir.path().join("old.jsonl");
    std::fs::write(
        &old,
        "{\"event\":\"started\",\"protocol\":\"blue6\",\"time\":1}\n\
         {\"event\":\"finished\",\"total\":0,\"time\":2}\n",
    )
    .unwrap();
    let output = send(&old);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("old.jsonl") && stderr.contains("no identity"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}

#[test]
fn the_readme_lists_every_private_code() {
    let readme = std::fs::read_to_string(common::repo("README.md")).unwrap();
    for (value, scheme, _) in pleura::hospital::PLEURA_CODES {
        assert_eq!(*scheme, pleura::hospital::PLEURA_SCHEME);
        assert!(
            readme.contains(&format!("`{value}`")),
            "the README's 99PLEURA table lacks `{value}`"
        );
    }
}
