//! The candle network computes what the PyTorch trainer computed.
//!
//! `tests/fixtures/` holds, written by `scripts/train/train.py`: the trained
//! f32 weights, four real frames (one per expert score) and the trainer's
//! outputs for them. CI needs no PyTorch to check them.

mod common;

use candle_core::{D, Device, Tensor};
use pleura::model::gguf::ModelFile;
use pleura::model::import::{Quantization, import_safetensors};
use pleura::model::{LusNet, Precision};

struct Fixture {
    frames: Vec<Vec<u8>>,
    score_logits: Tensor,
    seg_logits: Tensor,
}

fn fixture() -> Fixture {
    let path = common::repo("tests/fixtures/parity.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture loads");
    let frames = tensors["frames"].clone();
    let (n, s, _) = frames.dims3().unwrap();
    let flat = frames.flatten_all().unwrap().to_vec1::<u8>().unwrap();
    Fixture {
        frames: flat.chunks(s * s).map(<[u8]>::to_vec).take(n).collect(),
        score_logits: tensors["score_logits"].clone(),
        seg_logits: tensors["seg_logits"].clone(),
    }
}

fn network(quantization: Quantization, precision: Precision) -> LusNet {
    let weights = common::repo("tests/fixtures/lusnet-parity-f32.safetensors");
    let file: ModelFile =
        import_safetensors(&weights, quantization).expect("fixture weights import");
    LusNet::from_file(file, precision).expect("network builds")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn argmax(t: &Tensor) -> Vec<u32> {
    t.argmax(D::Minus1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()
}

#[test]
fn f32_forward_matches_pytorch_within_1e_4() {
    let fx = fixture();
    let net = network(Quantization::F32, Precision::F32);
    let views: Vec<&[u8]> = fx.frames.iter().map(Vec::as_slice).collect();
    let out = net.forward(&net.input_tensor(&views).unwrap()).unwrap();
    assert_eq!(out.score_logits.dims(), fx.score_logits.dims());
    assert_eq!(out.seg_logits.dims(), fx.seg_logits.dims());
    let score_diff = max_abs_diff(&out.score_logits, &fx.score_logits);
    let seg_diff = max_abs_diff(&out.seg_logits, &fx.seg_logits);
    assert!(score_diff < 1e-4, "score logits differ by {score_diff}");
    assert!(seg_diff < 1e-4, "segmentation logits differ by {seg_diff}");
}

#[test]
fn q8_0_forward_keeps_the_pytorch_decisions() {
    common::init_threads();
    let fx = fixture();
    let views: Vec<&[u8]> = fx.frames.iter().map(Vec::as_slice).collect();
    for precision in [Precision::Quantized, Precision::F32] {
        let net = network(Quantization::Q8_0, precision);
        let out = net.forward(&net.input_tensor(&views).unwrap()).unwrap();
        assert_eq!(
            argmax(&out.score_logits),
            argmax(&fx.score_logits),
            "{precision:?} score argmax"
        );
        let (got, want) = (argmax(&out.seg_logits), argmax(&fx.seg_logits));
        let agree =
            got.iter().zip(&want).filter(|(a, b)| a == b).count() as f64 / want.len() as f64;
        assert!(
            agree >= 0.98,
            "{precision:?}: segmentation cells agree on {:.2} %",
            100.0 * agree
        );
    }
}
