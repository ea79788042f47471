//! The candle network computes what the PyTorch trainer computed.
//!
//! `tests/fixtures/` holds, written by `scripts/train/train.py`: the trained
//! f32 weights, four real frames (one per expert score) and the trainer's
//! outputs for them, with each frame's v3 head outputs (finding logits,
//! clip attention logit and clip value). CI needs no PyTorch to check them.

mod common;

use candle_core::{D, Device, Tensor};
use pleura::model::ModelFile;
use pleura::model::import::{Quantization, import_safetensors};
use pleura::model::{LusNet, Precision};

struct Fixture {
    frames: Vec<Vec<u8>>,
    score_logits: Tensor,
    seg_logits: Tensor,
    /// `[N, 4]`, `[N]` and `[N]`: what the trainer's v3 heads said.
    heads: (Tensor, Tensor, Tensor),
}

fn fixture() -> Fixture {
    let path = common::repo("tests/fixtures/parity.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("fixture loads");
    // [N, S, S] frames, or a 2.5D model's [N, 3, S, S] inputs.
    let frames = tensors["frames"].clone();
    let n = frames.dims()[0];
    let per_input = frames.elem_count() / n;
    let flat = frames.flatten_all().unwrap().to_vec1::<u8>().unwrap();
    Fixture {
        frames: flat.chunks(per_input).map(<[u8]>::to_vec).collect(),
        score_logits: tensors["score_logits"].clone(),
        seg_logits: tensors["seg_logits"].clone(),
        heads: (
            tensors["finding_logits"].clone(),
            tensors["clip_attention"].clone(),
            tensors["clip_value"].clone(),
        ),
    }
}

/// The fixture network with its clip head deciding the clip (whatever
/// rule the trainer's file declares), so that its terms are computed.
fn network_with_clip_head(quantization: Quantization, precision: Precision) -> LusNet {
    let mut file = fixture_file(quantization);
    file.meta.aggregation = pleura::model::heads::AGGREGATION.into();
    LusNet::from_file(file, precision).expect("network builds")
}

/// Each frame's v3 head outputs as `[N, 4]`, `[N]`, `[N]` tensors.
fn head_outputs(net: &LusNet, frames: &[&[u8]]) -> (Tensor, Tensor, Tensor) {
    let predictions = net.predict(frames).unwrap();
    let heads: Vec<_> = predictions
        .iter()
        .map(|p| p.heads.expect("v3 heads"))
        .collect();
    let n = heads.len();
    let column = |f: &dyn Fn(&pleura::model::heads::HeadOutputs) -> f32| {
        Tensor::from_vec(heads.iter().map(f).collect::<Vec<_>>(), n, &Device::Cpu).unwrap()
    };
    let findings: Vec<f32> = heads.iter().flat_map(|h| h.finding_logits).collect();
    (
        Tensor::from_vec(findings, (n, 4), &Device::Cpu).unwrap(),
        column(&|h| h.clip.expect("clip terms").attention),
        column(&|h| h.clip.expect("clip terms").value),
    )
}

/// The trainer's fixture weights, imported.
fn fixture_file(quantization: Quantization) -> ModelFile {
    let weights = common::repo("tests/fixtures/lusnet-parity-f32.safetensors");
    import_safetensors(&weights, quantization).expect("fixture weights import")
}

fn network(quantization: Quantization, precision: Precision) -> LusNet {
    LusNet::from_file(fixture_file(quantization), precision).expect("network builds")
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

#[test]
fn the_v3_heads_match_pytorch_in_f32_and_keep_their_calls_in_int8() {
    common::init_threads();
    let fx = fixture();
    let views: Vec<&[u8]> = fx.frames.iter().map(Vec::as_slice).collect();
    let (findings, attention, value) = head_outputs(
        &network_with_clip_head(Quantization::F32, Precision::F32),
        &views,
    );
    for (name, got, want) in [
        ("finding logits", &findings, &fx.heads.0),
        ("clip attention", &attention, &fx.heads.1),
        ("clip value", &value, &fx.heads.2),
    ] {
        let diff = max_abs_diff(got, want);
        assert!(diff < 1e-3, "f32 {name} differ by {diff}");
    }
    // The shipped path: Q8_0 weights, integer convolutions. Each finding
    // call (logit sign) survives where PyTorch was not on the fence.
    let (findings, _, value) = head_outputs(
        &network_with_clip_head(Quantization::Q8_0, Precision::Int8),
        &views,
    );
    let (got, want) = (
        findings.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        fx.heads.0.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    for (g, w) in got.iter().zip(&want).filter(|(_, w)| w.abs() > 0.5) {
        assert_eq!(g.signum(), w.signum(), "int8 finding logit {g} against {w}");
    }
    let value_diff = max_abs_diff(&value, &fx.heads.2);
    let spread = fx
        .heads
        .2
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        value_diff < 0.1 * spread.max(1.0),
        "int8 clip values differ by {value_diff}"
    );
}
