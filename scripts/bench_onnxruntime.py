#!/usr/bin/env python3
"""ONNX Runtime's side of `scripts/bench`, and the report that joins both sides.

    bench_onnxruntime.py time --onnx-dir DIR --frames FRAMES --weights W --threads N --out OUT.json
    bench_onnxruntime.py report RUN.json [RUN.json ...] --memory MEMORY.tsv \
        --memory-summary RUN.txt --out results.json --table results.md

`time` runs `DIR/lusnet.onnx` (f32) and `DIR/lusnet-int8.onnx` (QDQ) on the
frames `benches/model.rs` timed (normalized as the runtime does, from the
weights' metadata) at N intra-op threads, in rounds like the Rust bench,
and writes every latency sample. Before timing, it checks that the f32
graph gives the logits of the parity fixture, so the graph is the network
Pleura runs.

`report` pools the samples of every run per path and thread count, and
writes the median and p99 per frame, the ratios the targets are stated in
(int8 against candle f32, and against ONNX Runtime int8 at the same
threads), the pipeline's fps (`pipeline-PRECISION-N.json`, reports of
`pleura run`), and the memory of the long run (resident size samples:
time, VmRSS and VmHWM in kB, and what `pleura run` printed), as JSON and
as a Markdown table.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

ROUNDS = 5
FRAMES_PER_ROUND = 40
ROOT = Path(__file__).resolve().parents[1]
PARITY = ROOT / "tests" / "fixtures" / "parity.safetensors"


def session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def normalize(frames, meta):
    mean, std = float(meta["norm_mean"]), float(meta["norm_std"])
    x = (frames.astype(np.float32) / 255.0 - mean) / std
    return x[:, None] if x.ndim == 3 else x  # [N, S, S] frames, or [N, C, S, S] 2.5D inputs


def check_parity(sess, meta):
    """The f32 graph reproduces the trainer's logits on the parity fixture's frames."""
    fixture = load_file(str(PARITY))
    inputs = normalize(fixture["frames"], meta)
    worst = 0.0
    for i, x in enumerate(inputs):
        score, seg = sess.run(None, {"frame": x[None]})
        worst = max(worst, float(np.abs(score[0] - fixture["score_logits"][i]).max()),
                    float(np.abs(seg[0].transpose(1, 2, 0) - fixture["seg_logits"][i]).max()))
    if worst > 1e-3:
        sys.exit(f"bench: {sess._model_path} differs from the parity fixture by {worst:.2e}; "
                 f"not the network Pleura runs")
    return worst


def time_paths(args):
    with safe_open(str(args.weights), "np") as f:
        meta = f.metadata()
    inputs = normalize(load_file(str(args.frames))["frames"], meta)
    paths = [("ort-f32", args.onnx_dir / "lusnet.onnx"), ("ort-int8", args.onnx_dir / "lusnet-int8.onnx")]
    sessions = [session(p, args.threads) for _, p in paths]
    worst = check_parity(sessions[0], meta)
    samples = [[] for _ in paths]
    for round_ in range(ROUNDS + 1):
        for i, sess in enumerate(sessions):
            for j in range(FRAMES_PER_ROUND):
                x = inputs[(round_ * FRAMES_PER_ROUND + j) % len(inputs)][None]
                started = time.perf_counter()
                sess.run(None, {"frame": x})
                if round_ > 0:  # round 0 warms caches and thread pools
                    samples[i].append((time.perf_counter() - started) * 1e3)
    results = [{"path": name, "threads": args.threads, "samples_ms": s, "frames": len(s)}
               for (name, _), s in zip(paths, samples)]
    args.out.write_text(json.dumps(results))
    for r in results:
        print(f"{r['path']:<9} threads {args.threads} median {np.median(r['samples_ms']):.2f} ms")
    print(f"parity of the f32 graph: max |diff| {worst:.1e}; wrote {args.out}")


ORDER = ["int8", "f32", "q8", "ort-f32", "ort-int8"]
NAMES = {
    "int8": "Pleura int8 (src/model/int8.rs)",
    "f32": "candle f32 (im2col + gemm)",
    "q8": "candle QMatMul (Q8_0)",
    "ort-f32": "ONNX Runtime f32",
    "ort-int8": "ONNX Runtime int8 (QDQ, static)",
}


def memory(samples_path, summary_path):
    """Resident size over the long run: peak, and growth from its first quarter to its last."""
    import re
    rows = [line.split("\t") for line in samples_path.read_text().splitlines() if line.strip()]
    t = np.array([float(r[0]) for r in rows])
    rss = np.array([int(r[1]) for r in rows]) / 1024.0
    hwm = max(int(r[2]) for r in rows) / 1024.0
    summary = re.search(r"(\d+) frames scored in [\d.]+ s \(([\d.]+) fps\)", summary_path.read_text())
    if not summary:
        sys.exit(f"bench: {summary_path} has no run summary; the memory run failed")
    quarter = (t - t[0]) / max(t[-1] - t[0], 1e-9)
    first, last = rss[quarter <= 0.25], rss[quarter >= 0.75]
    return {"frames": int(summary.group(1)), "fps": float(summary.group(2)), "samples": int(len(rss)),
            "peak_rss_mib": hwm, "first_quarter_max_mib": float(first.max()),
            "last_quarter_max_mib": float(last.max()),
            "growth_mib": float(last.max() - first.max())}


def report(args):
    pooled = {}
    pipeline = {}
    for run in args.runs:
        if run.name.startswith("pipeline-"):
            precision = run.name.split("-")[1]
            pipeline.setdefault(precision, []).append(json.loads(run.read_text())["fps"])
            continue
        for r in json.loads(run.read_text()):
            pooled.setdefault((r["path"], r["threads"]), []).extend(r["samples_ms"])
    stats = {}
    for (path, threads), s in pooled.items():
        s = np.sort(np.array(s))
        stats[(path, threads)] = {"path": path, "threads": threads, "frames": int(len(s)),
                                  "median_ms": float(np.median(s)),
                                  "p99_ms": float(s[round((len(s) - 1) * 0.99)])}
    threads = sorted({t for _, t in stats})
    targets = []
    for t in threads:
        int8 = stats[("int8", t)]["median_ms"]
        for path, stat in stats.items():
            if path[1] == t:
                stat["ratio_to_f32"] = stat["median_ms"] / stats[("f32", t)]["median_ms"]
        targets += [
            {"threads": t, "target": "int8 <= 0.5x candle f32",
             "ratio": int8 / stats[("f32", t)]["median_ms"], "limit": 0.5},
            {"threads": t, "target": "int8 <= 0.8x ONNX Runtime int8",
             "ratio": int8 / stats[("ort-int8", t)]["median_ms"], "limit": 0.8},
        ]
    pipeline_fps = {p: float(np.median(v)) for p, v in pipeline.items()}
    if "int8" in pipeline_fps:
        targets.append({"threads": 2, "target": "pipeline >= 60 fps (int8, demo clips, --no-pace)",
                        "ratio": pipeline_fps["int8"] / 60.0, "limit": 1.0, "higher_is_better": True})
    startup = json.loads(args.startup.read_text())
    targets += [
        {"threads": 2, "target": "cold start <= 300 ms (process start to first score)",
         "ratio": startup["startup"]["cold_start_ms"] / 300.0, "limit": 1.0},
        {"threads": 2, "target": "first score <= 100 ms after a clip's first frame (demo, 25 fps)",
         "ratio": startup["latency"]["first_output_ms"] / 100.0, "limit": 1.0},
        {"threads": 2, "target": "capture-to-output p99 <= 30 ms (demo, 25 fps)",
         "ratio": startup["latency"]["capture_to_output_p99_ms"] / 30.0, "limit": 1.0},
    ]
    model = {
        "int8_over_ort_int8": {f"threads_{t}": stats[("int8", t)]["median_ms"] / stats[("ort-int8", t)]["median_ms"]
                               for t in threads},
        "int8_over_candle_f32": {f"threads_{t}": stats[("int8", t)]["median_ms"] / stats[("f32", t)]["median_ms"]
                                 for t in threads},
    }
    for target in targets:
        better = target.get("higher_is_better", False)
        target["met"] = target["ratio"] >= target["limit"] if better else target["ratio"] <= target["limit"]
    rows = [stats[(p, t)] for t in threads for p in ORDER if (p, t) in stats]
    mem = memory(args.memory, args.memory_summary)
    args.out.write_text(json.dumps({"cpu": startup["cpu"], "cpu_threads_per_core": startup["cpu_threads_per_core"],
                                    "paths": rows, "model": model, "targets": targets,
                                    "startup": startup["startup"], "latency": startup["latency"],
                                    "pipeline_fps": pipeline_fps, "pipeline_runs": pipeline, "memory": mem},
                                   indent=1))

    lines = [f"CPU: {startup['cpu']}, {startup['cpu_threads_per_core']} thread(s) per core", "", "| path | threads | median ms | p99 ms | × candle f32 |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {NAMES.get(r['path'], r['path'])} | {r['threads']} | {r['median_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['ratio_to_f32']:.2f} |")
    lines += ["", "| target | threads | ratio | met |", "|---|---|---|---|"]
    for t in targets:
        lines.append(f"| {t['target']} | {t['threads']} | {t['ratio']:.2f} | {'yes' if t['met'] else 'no'} |")
    lines += ["", "| pipeline (`pleura run --source demo --no-pace`) | fps, median |", "|---|---|"]
    for p, fps in sorted(pipeline_fps.items()):
        lines.append(f"| {p} | {fps:.0f} |")
    lines += ["", f"Memory, int8, {mem['frames']} frames at {mem['fps']:.0f} fps: peak RSS "
              f"{mem['peak_rss_mib']:.1f} MiB; RSS max {mem['first_quarter_max_mib']:.1f} MiB in the first "
              f"quarter, {mem['last_quarter_max_mib']:.1f} MiB in the last ({mem['growth_mib']:+.1f} MiB)."]
    st, lat = startup["startup"], startup["latency"]
    lines += ["", f"Cold start (process start to first score, median): {st['cold_start_ms']:.0f} ms; "
              f"model load: {st['model_load_ms']:.1f} ms. Demo at 25 fps: first score "
              f"{lat['first_output_ms']:.1f} ms after a clip's first frame (median over the clips); "
              f"capture to output p99 {lat['capture_to_output_p99_ms']:.1f} ms."]
    table = "\n".join(lines) + "\n"
    args.table.write_text(table)
    print(table, end="")
    print(f"wrote {args.out} and {args.table}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("time")
    t.add_argument("--onnx-dir", type=Path, required=True)
    t.add_argument("--frames", type=Path, required=True)
    t.add_argument("--weights", type=Path, required=True)
    t.add_argument("--threads", type=int, required=True)
    t.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("runs", type=Path, nargs="+")
    r.add_argument("--memory", type=Path, required=True)
    r.add_argument("--memory-summary", type=Path, required=True)
    r.add_argument("--startup", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--table", type=Path, required=True)
    args = ap.parse_args()
    (time_paths if args.command == "time" else report)(args)


if __name__ == "__main__":
    main()
