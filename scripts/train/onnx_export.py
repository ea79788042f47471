#!/usr/bin/env python3
"""LusNet to ONNX, for comparing Pleura's runtime with ONNX Runtime.

`train.py` calls `export_onnx` on the model it has just fitted. Run as a
script, it rebuilds the network from weights the trainer exported earlier
(`lusnet-vN.safetensors`, batch norm folded; the test fixture
`tests/fixtures/lusnet-parity-f32.safetensors` holds the shipped model's):

    python scripts/train/onnx_export.py WEIGHTS.safetensors --out DIR \\
        [--calibration FRAMES.safetensors]

It writes `DIR/lusnet.onnx` (f32) and, with calibration frames (`frames`,
u8 [N, S, S], the model's cropped input as `pleura` makes it),
`DIR/lusnet-int8.onnx`: ONNX Runtime's static QDQ quantization, weights
int8 per output channel, activations uint8 with scales calibrated on those
frames. The graph's input is the normalized frame [1, 1, S, S]; its outputs
are the score logits [1, 4] and the segmentation logits [1, C, S/4, S/4].
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as load_numpy

sys.path.insert(0, str(Path(__file__).parent))
from lusnet import LusNet  # noqa: E402

CONV_LAYERS = ["stem", "stem2", "down1", "block1", "down2", "block2", "down3", "block3", "up2", "up1"]


def from_export_state(path):
    """(LusNet in eval mode, metadata) from weights `LusNet.export_state` wrote.

    The folded weights go into the convolutions and each batch norm becomes
    the identity plus the folded bias, so the graph computes exactly what
    Pleura's runtime computes."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    widths = tuple(int(w) for w in meta["widths"].split(","))
    model = LusNet(widths, seg_classes=len(meta["seg_classes"].split(",")),
                   in_channels=state["stem.weight"].shape[1]).eval()
    with torch.no_grad():
        for name in CONV_LAYERS:
            block = getattr(model, name)
            block.conv.weight.copy_(state[f"{name}.weight"])
            block.bn.weight.fill_(1.0)
            block.bn.bias.copy_(state[f"{name}.bias"])
            block.bn.running_mean.zero_()
            block.bn.running_var.fill_(1.0 - block.bn.eps)
        for name in ["seg", "score"]:
            getattr(model, name).weight.copy_(state[f"{name}.weight"])
            getattr(model, name).bias.copy_(state[f"{name}.bias"])
    return model, meta


def export_onnx(model, size, path):
    """Writes the f32 graph of `model` (eval mode) for a [1, C, size, size] input."""
    x = torch.zeros(1, model.stem.conv.in_channels, size, size)
    torch.onnx.export(model.eval(), (x,), str(path), input_names=["frame"],
                      output_names=["score_logits", "seg_logits"], opset_version=18,
                      external_data=False, verbose=False)


def normalize(frames, meta):
    """u8 [N, S, S] (or 2.5D [N, C, S, S]) -> f32 [N, C, S, S] as the runtime normalizes them."""
    mean, std = float(meta["norm_mean"]), float(meta["norm_std"])
    x = (frames.astype(np.float32) / 255.0 - mean) / std
    return x[:, None] if x.ndim == 3 else x


def quantize_int8(f32_path, int8_path, calibration):
    """ONNX Runtime static QDQ quantization of `f32_path`, calibrated on `calibration` (f32 inputs)."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"frame": x[None]} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    prepared = int8_path.with_suffix(".prep.onnx")
    quant_pre_process(str(f32_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(int8_path), Frames(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    prepared.unlink()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path, help="lusnet-vN.safetensors as train.py exports it")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--calibration", type=Path, help="safetensors with `frames`, u8 [N, S, S]")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model, meta = from_export_state(args.weights)
    size = int(meta["input_size"])
    f32_path = args.out / "lusnet.onnx"
    export_onnx(model, size, f32_path)
    print(f"wrote {f32_path}")
    if args.calibration:
        frames = load_numpy(str(args.calibration))["frames"]
        int8_path = args.out / "lusnet-int8.onnx"
        quantize_int8(f32_path, int8_path, normalize(frames, meta))
        print(f"wrote {int8_path} (calibrated on {len(frames)} frames)")


if __name__ == "__main__":
    main()
