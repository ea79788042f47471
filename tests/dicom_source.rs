//! Hospital clips as a source: DICOM files Pleura wrote, and the same
//! files compressed by dcmtk (JPEG baseline, RLE), read back through
//! dicom-rs as gray frames at their frame rate; bad files named.

mod common;

#[path = "common/hospital.rs"]
#[allow(dead_code)]
mod fixtures;

use common::{pleura, succeed};
use fixtures::{Zone, scheduled};
use pleura::exam::ZoneClip;
use pleura::source::{DicomSource, FrameSource, decode_clip};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first 10 frames of a demo clip, as a zone clip.
fn demo_clip() -> ZoneClip {
    let frames = decode_clip(&common::repo("tests/demo/covid-score2.mp4"), None).unwrap();
    let (width, height) = (frames[0].width, frames[0].height);
    ZoneClip {
        width,
        height,
        frame_time: Duration::from_millis(40),
        pixels: frames[..10].iter().flat_map(|f| f.pixels.clone()).collect(),
    }
}

/// A finished exam's DICOM files written by `pleura send --out`: one zone
/// clip of 10 demo frames (and the summary capture, RGB, and the report).
fn exam_files(dir: &Path) -> PathBuf {
    let zones = vec![Zone {
        score: 1,
        findings: None,
        clip: Some(demo_clip()),
    }];
    let identity = scheduled("MRN-9", "ACC-9", "1.2.826.0.1.3680043.10.543.9");
    let journal = fixtures::finished_exam(dir, pleura::exam::Protocol::Blue6, identity, zones);
    let out = dir.join("out");
    succeed(pleura().arg("send").arg(&journal).arg("--out").arg(&out));
    out
}

fn frames(path: &Path) -> Vec<Vec<u8>> {
    let mut source = DicomSource::open(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (source.frame_rate().unwrap() - 25.0).abs() < 1e-6,
        "Frame Time 40 ms"
    );
    std::iter::from_fn(|| source.next_frame().unwrap().map(|f| f.pixels)).collect()
}

fn dcmtk(program: &str, args: &[&std::ffi::OsStr]) {
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}: install Debian's dcmtk (scripts/setup does)"));
    assert!(status.success(), "{program} failed");
}

#[test]
fn a_us_multiframe_clip_reads_back_exactly_and_compressed_copies_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let out = exam_files(dir.path());
    let original = out.join("zone-R-up.dcm");
    let expected = demo_clip();
    let read = frames(&original);
    assert_eq!(read.len(), 10);
    assert_eq!(read.concat(), expected.pixels, "uncompressed: exact");

    let rle = dir.path().join("rle.dcm");
    dcmtk("dcmcrle", &[original.as_os_str(), rle.as_os_str()]);
    assert_eq!(frames(&rle).concat(), expected.pixels, "RLE is lossless");

    let jpeg = dir.path().join("jpeg.dcm");
    dcmtk(
        "dcmcjpeg",
        &["+eb".as_ref(), original.as_os_str(), jpeg.as_os_str()],
    );
    let lossy = frames(&jpeg).concat();
    assert_eq!(lossy.len(), expected.pixels.len());
    let mean_error = lossy
        .iter()
        .zip(&expected.pixels)
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).unsigned_abs())
        .sum::<u32>() as f64
        / lossy.len() as f64;
    assert!(
        mean_error < 4.0,
        "JPEG baseline within its loss: {mean_error}"
    );
}

#[test]
fn a_colour_single_frame_becomes_one_gray_frame_and_jpeg_ybr_reads_alike() {
    let dir = tempfile::tempdir().unwrap();
    let out = exam_files(dir.path());
    let summary = out.join("summary.dcm");
    let mut source = DicomSource::open(&summary).unwrap();
    let gray = source.next_frame().unwrap().expect("one frame");
    assert!(source.next_frame().unwrap().is_none(), "a single frame");
    assert_eq!((gray.width, gray.height), (800, 480));
    let jpeg = dir.path().join("summary-jpeg.dcm");
    dcmtk(
        "dcmcjpeg",
        &["+eb".as_ref(), summary.as_os_str(), jpeg.as_os_str()],
    );
    let mut again = DicomSource::open(&jpeg).unwrap();
    let lossy = again.next_frame().unwrap().unwrap();
    let mean_error = lossy
        .pixels
        .iter()
        .zip(&gray.pixels)
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).unsigned_abs())
        .sum::<u32>() as f64
        / gray.pixels.len() as f64;
    assert!(mean_error < 6.0, "YBR_FULL_422 JPEG, as gray: {mean_error}");
}

#[test]
fn pleura_scores_and_runs_a_dicom_clip() {
    let dir = tempfile::tempdir().unwrap();
    let out = exam_files(dir.path());
    let clip = out.join("zone-R-up.dcm");
    let scored = succeed(pleura().arg("score").arg(&clip));
    assert!(String::from_utf8_lossy(&scored.stdout).contains("score"));
    let report = dir.path().join("run.json");
    succeed(
        pleura()
            .args(["run", "--display", "none", "--no-pace", "--source"])
            .arg(format!("dicom:{}", clip.display()))
            .arg("--report")
            .arg(&report),
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["frames"]["captured"], 10, "{report}");
}

#[test]
fn a_file_that_is_not_a_dicom_picture_is_refused_by_name_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = exam_files(dir.path());
    let text = dir.path().join("notes.dcm");
    std::fs::write(&text, "not a DICOM file at all").unwrap();
    let truncated = dir.path().join("truncated.dcm");
    let bytes = std::fs::read(out.join("zone-R-up.dcm")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let huge = dir.path().join("huge.dcm");
    let dump = dir.path().join("huge.txt");
    std::fs::write(
        &dump,
        "(0008,0016) UI [1.2.840.10008.5.1.4.1.1.3.1]\n\
         (0028,0002) US 1\n(0028,0004) CS [MONOCHROME2]\n(0028,0008) IS [50000]\n\
         (0028,0010) US 4096\n(0028,0011) US 4096\n(0028,0100) US 8\n\
         (0028,0101) US 8\n(0028,0102) US 7\n(0028,0103) US 0\n",
    )
    .unwrap();
    dcmtk(
        "dump2dcm",
        &[
            "--write-xfer-little".as_ref(),
            dump.as_os_str(),
            huge.as_os_str(),
        ],
    );
    // The same picture in a transfer syntax Pleura does not read, and one
    // picture wider than any grabber's.
    let (big_endian, wide) = (dir.path().join("big.dcm"), dir.path().join("wide.dcm"));
    let wide_dump = dir.path().join("wide.txt");
    std::fs::write(
        &wide_dump,
        std::fs::read_to_string(&dump)
            .unwrap()
            .replace("(0028,0008) IS [50000]", "(0028,0008) IS [1]")
            .replace("(0028,0011) US 4096", "(0028,0011) US 5000"),
    )
    .unwrap();
    let small_dump = dir.path().join("small.txt");
    std::fs::write(
        &small_dump,
        std::fs::read_to_string(&dump)
            .unwrap()
            .replace("(0028,0008) IS [50000]", "(0028,0008) IS [1]")
            .replace("4096", "16"),
    )
    .unwrap();
    dcmtk(
        "dump2dcm",
        &[
            "--write-xfer-big".as_ref(),
            small_dump.as_os_str(),
            big_endian.as_os_str(),
        ],
    );
    dcmtk(
        "dump2dcm",
        &[
            "--write-xfer-little".as_ref(),
            wide_dump.as_os_str(),
            wide.as_os_str(),
        ],
    );
    for (file, says) in [
        (text, "not a DICOM file"),
        (out.join("report.dcm"), "not a picture"),
        (huge, "more than the 1024 MiB"),
        (
            big_endian,
            "transfer syntax 1.2.840.10008.1.2.2 is not read",
        ),
        (wide, "declares 5000x4096 pixels"),
    ] {
        let error = DicomSource::open(&file).err().expect("refused").to_string();
        assert!(
            error.contains(&*file.to_string_lossy()) && error.contains(says),
            "{error}"
        );
    }
    // A file cut short is refused when opened or at its first frame.
    let cut = DicomSource::open(&truncated).and_then(|mut s| s.next_frame().map(|_| ()));
    let error = cut.expect_err("a truncated file").to_string();
    assert!(error.contains("truncated.dcm"), "{error}");
}

/// Inputs the fuzzer found (`scripts/fuzz dicom_clip`), as the fuzz target
/// feeds them: after a zero preamble and `DICM`.
fn fuzz_finding(name: &str, dir: &Path) -> PathBuf {
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICM");
    bytes.extend(std::fs::read(common::repo(&format!("tests/fixtures/fuzz/{name}"))).unwrap());
    let path = dir.join(format!("{name}.dcm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_small_file_declaring_a_huge_element_is_refused_before_anything_is_allocated() {
    // 480 bytes whose header declares an element of some 3 GB: the parser
    // would have sized its buffer by the declaration (the fuzzer's
    // out-of-memory finding).
    let dir = tempfile::tempdir().unwrap();
    let path = fuzz_finding("dicom-clip-oom-1f3be492", dir.path());
    let error = DicomSource::open(&path).err().expect("refused").to_string();
    assert!(
        error.contains("dicom-clip-oom-1f3be492.dcm") && error.contains("past the end"),
        "{error}"
    );
}

#[test]
fn an_unknown_vr_is_measured_as_the_parser_reads_it() {
    // A StudyDescription whose VR bytes were damaged: the parser reads an
    // unknown VR as UN, with a 32-bit length taken from the text, some
    // 1.7 GB (the fuzzer's timeout finding: the kernel zeroing the buffer).
    let dir = tempfile::tempdir().unwrap();
    let path = fuzz_finding("dicom-clip-unknown-vr-aec8dbbe", dir.path());
    let error = DicomSource::open(&path).err().expect("refused").to_string();
    assert!(error.contains("past the end"), "{error}");
}

#[test]
fn a_number_element_of_a_ragged_length_is_refused() {
    // ManufacturerModelName turned into an FD of 10 bytes: the parser reads
    // one 8-byte number and goes on two bytes early, into a header it
    // misreads as declaring gigabytes (the fuzzer's second timeout).
    let dir = tempfile::tempdir().unwrap();
    let path = fuzz_finding("dicom-clip-ragged-fd-1ef7a181", dir.path());
    let error = DicomSource::open(&path).err().expect("refused").to_string();
    assert!(
        error.contains("(0008,1090)") && error.contains("not a whole number"),
        "{error}"
    );
}

#[test]
fn a_file_meta_group_whose_length_disagrees_with_its_elements_is_refused() {
    // The meta group's length says 182 bytes, its elements (one with a
    // damaged VR) take 96: dicom-object reads the meta group by its length
    // and so meets the data set elsewhere than the walk, at an
    // undefined-length header it sized at 2 GB (the fuzzer's fourth
    // out-of-memory finding).
    let dir = tempfile::tempdir().unwrap();
    let path = fuzz_finding("dicom-clip-meta-length-af8cbf9f", dir.path());
    let error = DicomSource::open(&path).err().expect("refused").to_string();
    assert!(
        error.contains("meta group declares 182 bytes") && error.contains("take 96"),
        "{error}"
    );
}

#[test]
fn an_element_in_the_item_group_that_is_not_an_item_or_a_delimiter_is_refused() {
    // A (FFFE,FFFF) header with a length of 4 GB among the image pixel
    // module: the parser reads it as an element and sizes its value by
    // that length (the fuzzer's fifth out-of-memory finding).
    let dir = tempfile::tempdir().unwrap();
    let path = fuzz_finding("dicom-clip-fffe-element-e974e91d", dir.path());
    let error = DicomSource::open(&path).err().expect("refused").to_string();
    assert!(
        error.contains("(FFFE,FFFF) is neither an item nor a delimiter"),
        "{error}"
    );
}
