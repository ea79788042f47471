//! The model file: what ships, and how damaged or foreign files are refused.

mod common;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use pleura::model::ModelFile;
use pleura::model::import::{Quantization, import_safetensors};
use pleura::model::{LusNet, ModelError, Precision};
use std::path::Path;

fn copy_of_shipped(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("model.gguf");
    std::fs::copy(common::shipped_model(), &path).expect("copy shipped model");
    path
}

#[test]
fn shipped_model_is_a_small_q8_0_lusnet_with_its_description() {
    let path = common::shipped_model();
    let size = std::fs::metadata(&path)
        .expect("models/lusnet-v3.gguf exists")
        .len();
    assert!(
        size <= 2_000_000,
        "shipped model is {size} bytes, limit 2 MB"
    );

    let file = ModelFile::read(&path).expect("shipped model reads");
    let meta = &file.meta;
    assert_eq!(meta.architecture, "lusnet");
    assert_eq!(meta.input_size, 128);
    assert_eq!(meta.seg_classes, ["background", "b_line", "consolidation"]);
    assert!(meta.norm_std > 0.0);
    assert!(
        meta.licenses.contains("CC BY-NC"),
        "licenses: {}",
        meta.licenses
    );
    assert!(meta.training_data.contains("BLUES"));
    // The accuracy the file carries: the protocol's pooled BLUES numbers
    // with intervals, for the recipe the file was fitted with.
    let cv: serde_json::Value = serde_json::from_str(&meta.cv_metrics).expect("cv_metrics is JSON");
    let protocol = &cv["blues_pooled"]["macro_f1"];
    assert!(
        protocol["mean"].is_number() && protocol["ci_low"].is_number(),
        "cv_metrics has no pooled BLUES macro-F1 with an interval: {}",
        meta.cv_metrics
    );
    // The convolutions and the score head are Q8_0; biases and the small
    // v3 heads (run once per frame on the embedding) stay f32.
    assert!(
        pleura::model::heads::in_file(&file),
        "the shipped model has the v3 heads"
    );
    for (name, tensor) in &file.tensors {
        let v3_head = name.starts_with("findings.") || name.starts_with("clip.");
        let want = if name.ends_with(".weight") && !v3_head {
            GgmlDType::Q8_0
        } else {
            GgmlDType::F32
        };
        assert_eq!(tensor.dtype(), want, "{name}");
    }
    LusNet::from_file(file, Precision::Quantized).expect("network builds");
}

#[test]
fn missing_model_file_is_named_in_the_error() {
    let err =
        LusNet::load(Path::new("/nonexistent/lusnet.gguf"), Precision::Quantized).unwrap_err();
    assert!(matches!(err, ModelError::Missing { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/lusnet.gguf"),
        "{err}"
    );
}

#[test]
fn truncated_model_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_shipped(dir.path());
    let full = std::fs::read(&path).unwrap();
    for keep in [0, 3, 100, full.len() / 2, full.len() - 1] {
        std::fs::write(&path, &full[..keep]).unwrap();
        let err = LusNet::load(&path, Precision::Quantized).unwrap_err();
        assert!(
            matches!(err, ModelError::Corrupt { .. }),
            "{keep} bytes: {err:?}"
        );
        assert!(err.to_string().contains("model.gguf"), "{err}");
    }
}

#[test]
fn flipped_byte_in_the_weights_fails_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_shipped(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = LusNet::load(&path, Precision::Quantized).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err:?}");
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn model_of_another_architecture_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llama.gguf");
    let tensor = QTensor::quantize(
        &Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
    .unwrap();
    let arch = Value::String("llama".into());
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(
        &mut file,
        &[("general.architecture", &arch)],
        &[("token_embd.weight", &tensor)],
    )
    .unwrap();
    drop(file);
    let err = LusNet::load(&path, Precision::F32).unwrap_err();
    assert!(
        matches!(err, ModelError::WrongArchitecture { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("llama") && message.contains("llama.gguf"),
        "{message}"
    );
}

#[test]
fn garbage_instead_of_a_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(
        &path,
        b"this is not a model, just some text that happens to be here",
    )
    .unwrap();
    let err = LusNet::load(&path, Precision::Quantized).unwrap_err();
    assert!(err.to_string().contains("notes.gguf"), "{err}");
}

#[test]
fn import_write_and_read_back_give_the_same_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let weights = common::repo("tests/fixtures/lusnet-parity-f32.safetensors");
    for quantization in [Quantization::Q8_0, Quantization::F32] {
        let mut imported = import_safetensors(&weights, quantization).unwrap();
        let path = dir.path().join("roundtrip.gguf");
        imported.write(&path).unwrap();
        let read = ModelFile::read(&path).unwrap();
        assert_eq!(read.meta, imported.meta);
        assert_eq!(read.tensors.len(), imported.tensors.len());
        assert!(!dir.path().join("roundtrip.gguf.partial").exists());
    }
}

#[test]
fn importing_a_missing_or_corrupt_safetensors_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing =
        import_safetensors(&dir.path().join("none.safetensors"), Quantization::Q8_0).unwrap_err();
    assert!(matches!(missing, ModelError::Missing { .. }), "{missing:?}");
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, [0xffu8; 64]).unwrap();
    let err = import_safetensors(&bad, Quantization::Q8_0).unwrap_err();
    assert!(
        matches!(err, ModelError::Corrupt { .. }) && err.to_string().contains("bad.safetensors"),
        "{err}"
    );
}

/// A small but valid model file, in memory: the shipped description and two
/// tiny tensors (reading checks the description and the checksums; the
/// network's shapes are checked later, when it is built).
fn tiny_model_bytes(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let shipped = ModelFile::read(&common::shipped_model()).unwrap();
    let mut meta = shipped.meta.clone();
    meta.cv_metrics = "{}".into();
    let mut tensors = std::collections::BTreeMap::new();
    let weight = Tensor::arange(0f32, 64.0, &Device::Cpu)
        .unwrap()
        .reshape((2, 32))
        .unwrap();
    tensors.insert(
        "stem.weight".to_string(),
        std::sync::Arc::new(QTensor::quantize(&weight, GgmlDType::Q8_0).unwrap()),
    );
    let bias = Tensor::new(&[0.5f32, -0.5], &Device::Cpu).unwrap();
    tensors.insert(
        "stem.bias".to_string(),
        std::sync::Arc::new(QTensor::quantize(&bias, GgmlDType::F32).unwrap()),
    );
    let mut file = ModelFile {
        path: "tiny".into(),
        meta,
        tensors,
    };
    let path = dir.join("tiny.gguf");
    file.write(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// The bytes of every tensor, by name.
fn tensor_bytes(file: &ModelFile) -> Vec<(String, Vec<u8>)> {
    file.tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.data().unwrap().to_vec()))
        .collect()
}

#[test]
fn every_single_bit_flip_in_a_model_file_is_refused_or_changes_nothing() {
    // Issue 16: the checksum covered only the tensors, so a flipped bit in
    // the description (input size, normalization, class names) went
    // unnoticed. Now every bit of the file is tried: the file is either
    // refused by name, or reads back to exactly the same description and
    // tensors (a bit in alignment padding, which nothing reads).
    let dir = tempfile::tempdir().unwrap();
    let (path, original) = tiny_model_bytes(dir.path());
    let reference = ModelFile::read_from(&path, std::io::Cursor::new(&original)).unwrap();
    let reference_tensors = tensor_bytes(&reference);
    let (mut refused, mut harmless) = (0, 0);
    for at in 0..original.len() {
        for bit in 0..8 {
            let mut bytes = original.clone();
            bytes[at] ^= 1 << bit;
            match ModelFile::read_from(&path, std::io::Cursor::new(&bytes)) {
                Err(err) => {
                    assert!(err.to_string().contains("tiny.gguf"), "{err}");
                    refused += 1;
                }
                Ok(read) => {
                    assert_eq!(read.meta, reference.meta, "byte {at} bit {bit} accepted");
                    assert_eq!(
                        tensor_bytes(&read),
                        reference_tensors,
                        "byte {at} bit {bit} accepted"
                    );
                    harmless += 1;
                }
            }
        }
    }
    assert!(
        refused > 8 * original.len() * 9 / 10,
        "{refused} refused, {harmless} harmless"
    );
}

#[test]
fn the_issue_16_repro_a_huge_input_size_is_refused_without_allocating() {
    // The byte offset of `lusnet.input_size`'s value in the shipped file,
    // set to 2^30 + 128: the process used to abort on a 25 GB allocation.
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_shipped(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[129..133], 128u32.to_le_bytes(), "input_size moved");
    bytes[129..133].copy_from_slice(&(1u32 << 30 | 128).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let output = common::pleura()
        .args(["score", "tests/demo/covid-score1.mp4", "--model"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("model.gguf") && stderr.contains("damaged"),
        "{stderr}"
    );
}

#[test]
fn a_resealed_file_with_impossible_values_is_refused_by_key() {
    // A file whose checksum was recomputed after the damage (or a broken
    // trainer) is still refused before any buffer is sized from it.
    let dir = tempfile::tempdir().unwrap();
    let shipped = ModelFile::read(&common::shipped_model()).unwrap();
    type Damage = fn(&mut pleura::model::ModelMeta);
    let cases: [(&str, Damage); 10] = [
        ("input_size", |m| m.input_size = (1 << 30) + 128),
        ("input_size", |m| m.input_size = 4096),
        ("input_size", |m| m.input_size = 136),
        ("norm_mean", |m| m.norm_mean = f32::NAN),
        ("norm_mean", |m| m.norm_mean = 40.0),
        ("norm_std", |m| m.norm_std = 1e-30),
        ("norm_std", |m| m.norm_std = f32::INFINITY),
        ("seg_classes", |m| m.seg_classes[1] = "b_lime".into()),
        ("widths", |m| m.widths[2] = 1 << 20),
        ("history_step", |m| m.history_step = 1 << 20),
    ];
    for (key, damage) in cases {
        let mut file = ModelFile {
            path: shipped.path.clone(),
            meta: shipped.meta.clone(),
            tensors: shipped.tensors.clone(),
        };
        damage(&mut file.meta);
        let path = dir.path().join("resealed.gguf");
        file.write(&path).unwrap();
        let err = ModelFile::read(&path).unwrap_err();
        assert!(matches!(err, ModelError::OutOfRange { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("resealed.gguf") && message.contains(&format!("lusnet.{key}")),
            "{message}"
        );
    }
}

#[test]
fn a_file_without_the_whole_content_checksum_is_refused() {
    // Files written before the checksum covered the description: the
    // description cannot be trusted, so the file is refused with advice.
    let dir = tempfile::tempdir().unwrap();
    let shipped = ModelFile::read(&common::shipped_model()).unwrap();
    let path = dir.path().join("old.gguf");
    let text = |s: &str| Value::String(s.to_string());
    let m = &shipped.meta;
    let values: Vec<(String, Value)> = vec![
        ("general.architecture".into(), text("lusnet")),
        ("lusnet.version".into(), Value::U32(1)),
        ("lusnet.input_size".into(), Value::U32(128)),
        (
            "lusnet.widths".into(),
            Value::Array(m.widths.iter().map(|&w| Value::U32(w as u32)).collect()),
        ),
        ("lusnet.norm_mean".into(), Value::F32(m.norm_mean)),
        ("lusnet.norm_std".into(), Value::F32(m.norm_std)),
        (
            "lusnet.seg_classes".into(),
            Value::Array(m.seg_classes.iter().map(|c| text(c)).collect()),
        ),
        ("lusnet.aggregation".into(), text(&m.aggregation)),
        ("lusnet.training_data".into(), text(&m.training_data)),
        ("lusnet.licenses".into(), text(&m.licenses)),
        ("lusnet.cv_metrics".into(), text("{}")),
        ("lusnet.tensors_sha256".into(), text(&m.tensors_sha256)),
    ];
    let values: Vec<(&str, &Value)> = values.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = shipped
        .tensors
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_ref()))
        .collect();
    let mut out = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut out, &values, &tensors).unwrap();
    drop(out);
    let err = ModelFile::read(&path).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("old.gguf") && message.contains("lusnet.content_sha256"),
        "{message}"
    );
}

#[test]
fn refused_models_print_one_message_and_no_backtrace() {
    // Issue 16: with RUST_BACKTRACE=1, a refused model printed a 14-frame
    // backtrace. A user-facing error is the message alone.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    let bytes = std::fs::read(common::shipped_model()).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    for backtrace in ["1", "full"] {
        let output = common::pleura()
            .env("RUST_BACKTRACE", backtrace)
            .arg("model")
            .arg("info")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("cut.gguf"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
    }
}

#[test]
fn a_device_or_a_file_larger_than_any_model_is_refused_before_reading() {
    // A sparse file of 300 MiB whose tensors could declare that much.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.gguf");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(300 << 20).unwrap();
    drop(file);
    for (path, says) in [
        (big.as_path(), "more than the 256 MiB"),
        (Path::new("/dev/zero"), "not a regular file"),
        (Path::new("/tmp"), "not a regular file"),
    ] {
        let err = ModelFile::read(path).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains(says),
            "{message}"
        );
    }
}

#[test]
fn trainer_weights_whose_stem_does_not_fit_their_history_step_are_refused() {
    // The fixture's weights take three frames (history_step 2). Told that
    // they take one, the stem's shape gives them away at import, before a
    // model file could run them on the wrong input.
    let dir = tempfile::tempdir().unwrap();
    let bytes =
        std::fs::read(common::repo("tests/fixtures/lusnet-parity-f32.safetensors")).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().expect("the trainer's metadata");
    assert_eq!(metadata.get("history_step").map(String::as_str), Some("2"));
    metadata.insert("history_step".into(), "0".into());
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let path = dir.path().join("one-frame.safetensors");
    safetensors::serialize_to_file(tensors.tensors(), Some(metadata), &path).unwrap();
    let err = import_safetensors(&path, Quantization::F32).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("one-frame.safetensors") && message.contains("stem.weight"),
        "{message}"
    );
}
