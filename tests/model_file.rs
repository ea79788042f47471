//! The model file: what ships, and how damaged or foreign files are refused.

mod common;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use pleura::model::gguf::ModelFile;
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
        .expect("models/lusnet-v2.gguf exists")
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
    // The accuracy the file carries: the protocol's pooled BLUES numbers with
    // intervals (scripts/train/train.py since issue 15), or, in lusnet-v2,
    // which predates the protocol, its single 5-fold run.
    let cv: serde_json::Value = serde_json::from_str(&meta.cv_metrics).expect("cv_metrics is JSON");
    let protocol = &cv["blues_pooled"]["macro_f1"];
    let single_run = &cv["pooled"]["blues"]["macro_f1"];
    assert!(
        (protocol["mean"].is_number() && protocol["ci_low"].is_number()) || single_run.is_number(),
        "cv_metrics has no BLUES macro-F1: {}",
        meta.cv_metrics
    );
    for (name, tensor) in &file.tensors {
        let want = if name.ends_with(".weight") {
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
