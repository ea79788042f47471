#!/usr/bin/env python3
"""Train LusNet: the final fit of the shipped recipe on every development
clip outside the lockbox, then export of the weights, a parity fixture and
plots.

    pip install -r scripts/train/requirements.txt
    python scripts/train/protocol.py         # the accuracy numbers: 3x5 CV, baselines, lockbox
    python scripts/train/train.py            # the model file, CPU or CUDA

Frames come from `pleura dataset export`, i.e. from the exact decode, sector
and resize code of the runtime; this script runs it when its cache is
missing. The accuracy of a recipe is measured by `protocol.py` (repeated
patient-grouped cross-validation with intervals); this script only fits the
model that ships, on the same data the protocol's lockbox check fits on, so
the lockbox patients (`lockbox.json`) are never trained on.
"""
import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from cv_stats import load_lockbox  # noqa: E402
from lusnet import FINDINGS, SEG_CLASSES, LusNet, lse_pool  # noqa: E402
from onnx_export import export_onnx  # noqa: E402
from weak_masks import weak_mask  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZE = 128  # the input side of every shipped LusNet so far; a recipe may set its own (`size`)
WIDTHS = (16, 32, 64, 128)
NORM_MEAN, NORM_STD = 0.2, 0.2
LICENSES = (
    "COVID-BLUES (Wiedemann et al., IEEE JBHI 2025): CC BY-NC-ND 4.0; "
    "POCUS (Born et al. 2021) files: CC BY-NC 4.0 / CC BY-NC-SA / CC BY 4.0 / CC BY 2.0 per file, "
    "severity labels (Gare et al. 2022): CC BY-NC 4.0. "
    "The weights are therefore for non-commercial research use only."
)


# ---------------------------------------------------------------- data

# The shipped recipe's settings (v2): the defaults of this script and the protocol's recipe.
RECIPE_V2 = dict(epochs=30, frames_per_clip=4, batch=32, lr=3e-3, seg_weight=0.5, masks="both", phantom_clips=12)
# v3: the same encoder and data, plus the finding heads (log-sum-exp pooled over the clip's
# frames in the batch, binary cross-entropy on the experts' known findings) and the clip head
# (attention over the frames' embeddings, cumulative-link ordinal loss). Real batches hold
# whole clips (batch / frames_per_clip clips of frames_per_clip frames) so both see clips.
RECIPE_V3 = RECIPE_V2 | dict(v3_heads=True, clip_weight=1.0, finding_weight=0.5)
# Recipe 3: v3 from the self-supervised encoder of pretrain.py (VICReg on nearby frames).
RECIPE_V3SSL = RECIPE_V3 | dict(pretrained=str(ROOT / "target" / "train" / "ssl" / "encoder.pt"))
# Recipe 4: a 160-pixel input and a wider brightness range for the phantom batches. Its base is v3:
# the rule written before recipe 3's results (the card) asked for v3ssl only if pretraining's
# paired macro-F1 gain was above zero, and it was not.
RECIPE_V3S160 = RECIPE_V3 | dict(size=160, phantom_intensity="wide")
# Recipe 4b: 2.5D input, the frames t - 2 step, t - step and t as channels (step in decoded frames),
# from the pretrained encoder (its stem's weights on frame t, the earlier channels starting at zero).
RECIPE_V3SSL25D = RECIPE_V3SSL | dict(history_step=2)
RECIPES = {"v2": RECIPE_V2, "v3": RECIPE_V3, "v3ssl": RECIPE_V3SSL, "v3s160": RECIPE_V3S160,
           "v3ssl25d": RECIPE_V3SSL25D}
FINAL_FIT_SEED = 100  # the final fit's seed, also the protocol's lockbox fit

PHANTOM_SETS = {"phantom": 1, "phantom-test": 900_001}  # folder -> first seed (disjoint seeds)


def cache_dir(cache, size, history_step=0):
    """The frame cache of one input side and history: `cache` itself at SIZE without history,
    else `cache-<side>` and / or `cache-hist<step>`."""
    name = cache.name + ("" if size == SIZE else f"-{size}") + (f"-hist{history_step}" if history_step else "")
    return cache.with_name(name)


def run_pleura(*args):
    """`cargo run --release -- ARGS` in the repository, echoed; fails the script if it fails."""
    cmd = ["cargo", "run", "--release", "--quiet", "--", *map(str, args)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def export_cache(cache, data, phantom_clips, size=SIZE, history_step=0):
    """`pleura dataset phantom` and `dataset export` into `cache` (each set once), at side `size`,
    with each frame's two earlier frames when `history_step` > 0."""
    for name, seed in PHANTOM_SETS.items():
        if not (cache / name / "index.json").exists():
            clips = phantom_clips if name == "phantom" else 4
            run_pleura("dataset", "phantom", "--out", cache / name, "--clips", clips, "--frames", 8,
                       "--size", size, "--seed", seed)
    for name in ["blues", "pocus"]:
        if not (cache / name / "index.json").exists():
            src = data / ("blues-dev" if name == "blues" else "pocus")
            run_pleura("dataset", "export", "--dataset", name, src, "--out", cache / name, "--size", size,
                       "--max-frames", 48, "--history-step", history_step)


def read_frames(folder):
    """(index, [(index entry, uint8 frames [T, S, S])]) of a set that `pleura dataset` exported."""
    index = json.loads((folder / "index.json").read_text())
    side = index["size"]
    return index, [(c, np.fromfile(folder / c["file"], dtype=np.uint8).reshape(c["frames"], side, side))
                   for c in index["clips"]]


def load_phantom(cache, name, history_step=0):
    """Phantom clips with pixel-exact masks at the segmentation head's resolution; with a
    `history_step`, each frame's two earlier frames too (a phantom clip's frames are consecutive)."""
    index, read = read_frames(cache / name)
    seg = index["seg_size"]
    clips = []
    for c, frames in read:
        masks = np.fromfile(cache / name / c["masks"], dtype=np.uint8).reshape(c["frames"], seg, seg)
        clip = {"name": c["name"], "dataset": "phantom", "group": f"phantom:{c['seed']}", "score": int(c["score"]),
                "phantom": True, "frames": frames, "masks": masks.astype(np.int64)}
        if history_step:
            t = np.arange(len(frames))
            clip["history"] = np.stack([frames[np.maximum(t - 2 * history_step, 0)],
                                        frames[np.maximum(t - history_step, 0)]], 1)
        clips.append(clip)
    return clips


def read_history(folder, entry, side):
    """The [T, 2, S, S] earlier frames of an exported clip (`--history-step`), or None."""
    if not entry.get("history"):
        return None
    return np.fromfile(folder / entry["history"], dtype=np.uint8).reshape(entry["frames"], 2, side, side)


def model_input(clip, frames=slice(None)):
    """uint8 [N, C, S, S] network input of a clip's `frames`: the frame alone (C = 1), or its two
    earlier frames and itself (C = 3, oldest first) when the clip has a history."""
    x = clip["frames"][frames]
    if clip.get("history") is None:
        return x[:, None]
    return np.concatenate([clip["history"][frames], x[:, None]], 1)


def load_clips(cache, masks):
    clips = []
    for name in ["blues", "pocus"]:
        index, read = read_frames(cache / name)
        if index["clips"] and "findings" not in index["clips"][0]:
            sys.exit(f"{cache / name} was exported before patients and findings were parsed (issue 15): "
                     f"delete {cache} and run again to re-export it")
        for c, frames in read:
            clips.append({
                "name": c["name"], "dataset": name, "group": f"{name}:{c['group']}", "zone": c.get("zone"),
                "score": int(c["score"]), "findings": c["findings"], "frames": frames,
                "history": read_history(cache / name, c, index["size"]),
            })
    for c in clips:
        f = c["findings"]
        seg_known = masks in ("weak", "both") and f["b_lines"] is not None
        c["masks"] = np.stack([weak_mask(x, bool(f["b_lines"]), bool(f["consolidation"])) for x in c["frames"]]) \
            if seg_known else None
    return clips


# ------------------------------------------------------- augmentations

# Intensity ranges (gain, gamma) of the augmentations; "wide" reaches the bright, low-contrast look of
# many POCUS files, for phantom batches only (recipe 4's `phantom_intensity`).
INTENSITY = {"default": ((0.7, 1.3), (0.8, 1.2)), "wide": ((0.7, 2.0), (0.5, 1.2))}


def augment(x, m, gen, intensity="default"):
    """Ultrasound-minded augmentations on a batch x [N,C,S,S] in [0,1] (the same geometry and gain
    on every channel) and masks m [N,S/4,S/4] (-1 = ignore)."""
    n, dev = x.shape[0], x.device
    u = lambda *s: torch.rand(*s, generator=gen, device="cpu").to(dev)  # noqa: E731
    # Geometry: small rotation about the probe (top centre), zoom, left-right flip, depth crop.
    angle = (u(n) - 0.5) * math.radians(20)
    zoom = 1.0 - u(n) * 0.15            # <1 zooms in
    depth = 1.0 - u(n) * 0.2            # keep the top 80-100 % of the depth
    flip = torch.where(u(n) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = cos * zoom * flip
    theta[:, 0, 1] = -sin * zoom * depth
    theta[:, 1, 0] = sin * zoom * flip
    theta[:, 1, 1] = cos * zoom * depth
    theta[:, 1, 2] = (depth * zoom - 1.0)  # anchor the top edge
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mg = F.affine_grid(theta, (n, 1) + m.shape[1:], align_corners=False)
    m = F.grid_sample((m + 1).float()[:, None], mg, mode="nearest", padding_mode="zeros",
                      align_corners=False)[:, 0].long() - 1
    # Intensity: overall gain, time-gain compensation ramp, gamma, speckle.
    s = x.shape[-1]
    depth_axis = torch.linspace(-0.5, 0.5, s, device=dev)[None, None, :, None]
    (g_lo, g_hi), (c_lo, c_hi) = INTENSITY[intensity]
    gain = g_lo + (g_hi - g_lo) * u(n)[:, None, None, None]
    tgc = 1.0 + (u(n)[:, None, None, None] - 0.5) * 0.8 * depth_axis
    gamma = c_lo + (c_hi - c_lo) * u(n)[:, None, None, None]
    x = (x.clamp(0, 1) ** gamma) * gain * tgc
    speckle = 1.0 + 0.15 * u(n)[:, None, None, None] * torch.randn(x.shape, generator=gen).to(dev)
    x = (x * speckle).clamp(0, 1)
    return x, m


def sord_targets(y, alpha=2.0):
    """Soft ordinal labels (SORD, Diaz & Marathe 2019): p(k) ∝ exp(-alpha (k - y)^2)."""
    k = torch.arange(4, device=y.device, dtype=torch.float32)
    return torch.softmax(-alpha * (k[None] - y[:, None].float()) ** 2, 1)


# ----------------------------------------------------------- training

def batches(clips, frames_per_clip, batch, rng, whole_clips=False):
    """Shuffled batches of (clip, frame) items; real and phantom frames never share a batch.

    With `whole_clips`, a real batch holds batch // frames_per_clip clips, each with exactly
    frames_per_clip frames in a row (drawn with replacement from a shorter clip)."""
    real, phantom = [], []
    for ci, c in enumerate(clips):
        t = len(c["frames"])
        if whole_clips and not c.get("phantom"):
            picks = rng.choice(t, size=frames_per_clip, replace=t < frames_per_clip)
            real.append([(ci, fi) for fi in picks])
            continue
        for fi in rng.choice(t, size=min(frames_per_clip, t), replace=False):
            (phantom if c.get("phantom") else real).append((ci, fi))
    out = []
    if whole_clips:
        rng.shuffle(real)
        per = max(1, batch // frames_per_clip)
        out += [sum(real[i:i + per], []) for i in range(0, len(real), per)]
        real = []
    for items in (real, phantom):
        rng.shuffle(items)
        out += [items[i:i + batch] for i in range(0, len(items), batch)]
    order = rng.permutation(len(out))
    for i in order:
        yield out[i]


def steps_per_epoch(clips, frames_per_clip, batch, whole_clips=False):
    counts = [0, 0]
    for c in clips:
        counts[bool(c.get("phantom"))] += min(frames_per_clip, len(c["frames"]))
    if whole_clips:
        real = sum(not c.get("phantom") for c in clips)
        return math.ceil(real / max(1, batch // frames_per_clip)) + math.ceil(counts[1] / batch)
    return sum(math.ceil(n / batch) for n in counts)


def finding_labels(findings):
    """The experts' findings as FINDINGS-ordered targets: 1 yes, 0 no, -1 unknown."""
    return [-1.0 if findings.get(f) is None else float(bool(findings[f])) for f in FINDINGS]


def to_batch(clips, items, device):
    x = np.concatenate([model_input(clips[ci], [fi]) for ci, fi in items]).astype(np.float32) / 255.0
    m = np.stack([clips[ci]["masks"][fi] if clips[ci]["masks"] is not None
                  else np.full((x.shape[-1] // 4,) * 2, -1) for ci, fi in items])
    y = np.array([clips[ci]["score"] for ci, _ in items])
    real = np.array([0.0 if clips[ci].get("phantom") else 1.0 for ci, _ in items], dtype=np.float32)
    return (torch.from_numpy(x).to(device), torch.from_numpy(m).long().to(device),
            torch.from_numpy(y).to(device), torch.from_numpy(real).to(device))


def train_model(clips, args, device, desc, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    v3 = getattr(args, "v3_heads", False)
    model = LusNet(WIDTHS, weak_head=args.masks == "both", v3_heads=v3,
                   in_channels=input_channels(args)).to(device)
    if getattr(args, "pretrained", None):
        load_encoder(model, Path(args.pretrained))
    counts = np.bincount([c["score"] for c in clips if not c.get("phantom")], minlength=4) + 1
    class_w = torch.tensor((counts.sum() / counts) ** 0.5, dtype=torch.float32, device=device)
    class_w = class_w / class_w.mean()
    seg_w = torch.tensor([0.2, 1.0, 1.0], device=device)
    steps = steps_per_epoch(clips, args.frames_per_clip, args.batch, whole_clips=v3)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps)
    history = []
    bar = tqdm(range(args.epochs), desc=desc, leave=False)
    for _ in bar:
        model.train()
        tot, tot_score, tot_seg, n = 0.0, 0.0, 0.0, 0
        for items in batches(clips, args.frames_per_clip, args.batch, rng, whole_clips=v3):
            x, m, y, real = to_batch(clips, items, device)
            phantom_batch = not bool(real.any())
            x, m = augment(x, m, gen, getattr(args, "phantom_intensity", "default") if phantom_batch else "default")
            x = (x - NORM_MEAN) / NORM_STD
            if phantom_batch:
                # Phantom frames train the segmentation only: the encoder keeps its batch-norm
                # statistics and its gradients for real frames.
                for name in LusNet.ENCODER:
                    getattr(model, name).eval()
            score, features, embedding = model.decode(x, detach_encoder=phantom_batch)
            # With `--masks both`, weak masks of real frames train an auxiliary head (as in v1 they
            # shape the encoder) and the shipped head learns from phantom masks only.
            seg = (model.seg_weak if model.seg_weak is not None and not phantom_batch else model.seg)(features)
            if phantom_batch:
                model.train()
            w = class_w[y] * real  # phantom frames teach segmentation only
            l_score = (-(sord_targets(y) * F.log_softmax(score, 1)).sum(1) * w).sum() / w.sum().clamp(min=1e-6)
            l_seg = F.cross_entropy(seg, m, weight=seg_w, ignore_index=-1) if (m >= 0).any() else score.sum() * 0
            loss = l_score + args.seg_weight * l_seg
            if v3 and not phantom_batch:
                loss = loss + clip_losses(model, embedding, items, clips, y, class_w, args)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(items)
            tot_score += l_score.item() * len(items)
            tot_seg += l_seg.item() * len(items)
            n += len(items)
        history.append({"loss": tot / n, "score_loss": tot_score / n, "seg_loss": tot_seg / n})
        bar.set_postfix(loss=f"{tot / n:.3f}")
    return model, history


def input_channels(recipe):
    """3 for a 2.5D recipe (`history_step`), else 1."""
    return 3 if getattr(recipe, "history_step", 0) else 1


def load_encoder(model, path):
    """Starts the encoder (weights and batch-norm statistics) from pretrain.py's output. A 2.5D
    model's stem gets the pretrained 1-channel weights on its last channel (frame t) and zeros on
    the earlier ones, so that it starts as the single-frame encoder."""
    if not path.exists():
        sys.exit(f"{path} is missing: run scripts/train/pretrain.py first")
    state = torch.load(path, map_location="cpu")
    stem = model.stem.conv.weight
    if state["stem.conv.weight"].shape[1] == 1 and stem.shape[1] > 1:
        inflated = torch.zeros_like(stem)
        inflated[:, -1:] = state["stem.conv.weight"]
        state["stem.conv.weight"] = inflated
    result = model.load_state_dict(state, strict=False)
    encoder_keys = [k for k in model.state_dict() if k.split(".")[0] in LusNet.ENCODER]
    if result.unexpected_keys or any(k in result.missing_keys for k in encoder_keys):
        sys.exit(f"{path} is not a LusNet encoder of these widths: {result}")


def clip_losses(model, embedding, items, clips, y, class_w, args):
    """The v3 heads' losses on a batch of whole clips (frames_per_clip frames each, in a row)."""
    f = args.frames_per_clip
    b = len(items) // f
    e = embedding.view(b, f, -1)
    y_clip = y.view(b, f)[:, 0]
    # Clip head: cumulative-link ordinal loss, P(y > k) = sigmoid(z - t_k), class-weighted.
    z, _ = model.clip(e)
    above = (y_clip[:, None] > torch.arange(3, device=y.device)[None]).float()
    l_clip = (F.binary_cross_entropy_with_logits(z[:, None] - model.clip.cutpoints()[None], above,
                                                 reduction="none").sum(1) * class_w[y_clip]).mean()
    # Finding heads: a clip's finding is the soft maximum of its frames' logits.
    logits = lse_pool(model.findings(model.dropout(embedding)).view(b, f, -1), 1)
    target = torch.tensor([finding_labels(clips[items[i * f][0]]["findings"]) for i in range(b)],
                          device=y.device)
    known = target >= 0
    l_find = (F.binary_cross_entropy_with_logits(logits, target.clamp(min=0), reduction="none") * known).sum() \
        / known.sum().clamp(min=1)
    return args.clip_weight * l_clip + args.finding_weight * l_find


@torch.no_grad()
def predict_clip_v3(model, frames, device):
    """Everything the v3 heads say about one clip (`frames`: uint8 [T, C, S, S], `model_input`), with and without a left-right flip:
    {frame_probs, finding_logits, b_area, c_area: per frame; z: the clip head's value over all
    frames; embeddings}, each under "plain" and "flip"."""
    model.eval()
    x = torch.from_numpy(frames.astype(np.float32) / 255.0).to(device)
    x = (x - NORM_MEAN) / NORM_STD
    out = {}
    for name, xs in (("plain", x), ("flip", x.flip(-1))):
        score, features, emb = model.decode(xs)
        labels = model.seg(features).argmax(1)
        z, _ = model.clip(emb[None])
        out[name] = {
            "frame_probs": torch.softmax(score, 1).cpu().numpy(),
            "finding_logits": model.findings(emb).cpu().numpy(),
            "b_area": (labels == SEG_CLASSES.index("b_line")).float().mean((1, 2)).cpu().numpy(),
            "c_area": (labels == SEG_CLASSES.index("consolidation")).float().mean((1, 2)).cpu().numpy(),
            "z": float(z[0]),
            "embeddings": emb.cpu().numpy().astype(np.float16),
        }
    out["cutpoints"] = model.clip.cutpoints().cpu().numpy()
    return out


@torch.no_grad()
def phantom_dice(model, clips, device):
    """Per-class Dice of the segmentation head on held-out phantom clips (pooled over all frames)."""
    model.eval()
    inter, total = np.zeros(len(SEG_CLASSES)), np.zeros(len(SEG_CLASSES))
    for c in clips:
        x = torch.from_numpy(model_input(c).astype(np.float32) / 255.0).to(device)
        _, seg = model((x - NORM_MEAN) / NORM_STD)
        pred = seg.argmax(1).cpu().numpy()
        for k in range(len(SEG_CLASSES)):
            p, t = pred == k, c["masks"] == k
            inter[k] += (p & t).sum()
            total[k] += p.sum() + t.sum()
    return {name: float(2 * inter[k] / total[k]) if total[k] else None for k, name in enumerate(SEG_CLASSES)}


@torch.no_grad()
def predict_clip(model, frames, device):
    """Mean softmax over all frames (the runtime's `mean_probability` rule) and the mean
    area fraction of each segmentation class, {class name: fraction}."""
    model.eval()
    x = torch.from_numpy(frames.astype(np.float32) / 255.0)[:, None].to(device)
    x = (x - NORM_MEAN) / NORM_STD
    probs, areas = [], []
    for i in range(0, len(x), 64):
        s, g = model(x[i:i + 64])
        probs.append(torch.softmax(s, 1).cpu())
        labels = g.argmax(1)
        areas.append(torch.stack([(labels == k).float().mean((1, 2)) for k in range(len(SEG_CLASSES))], 1).cpu())
    area = torch.cat(areas).mean(0)
    return torch.cat(probs).mean(0).numpy(), {name: float(area[k]) for k, name in enumerate(SEG_CLASSES)}


# -------------------------------------------------------------- plots

def plot_losses(histories, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, h in histories.items():
        ax[0].plot([e["score_loss"] for e in h], label=name)
        ax[1].plot([e["seg_loss"] for e in h], label=name)
    ax[0].set_title("score loss (SORD cross-entropy, train)")
    ax[1].set_title("segmentation loss (train)")
    for a in ax:
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=110)
    plt.close(fig)


# --------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "target" / "train-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "train")
    ap.add_argument("--size", type=int, help="input side (default: the recipe's, else 128)")
    ap.add_argument("--epochs", type=int, default=RECIPE_V2["epochs"])
    ap.add_argument("--frames-per-clip", type=int, default=RECIPE_V2["frames_per_clip"])
    ap.add_argument("--batch", type=int, default=RECIPE_V2["batch"])
    ap.add_argument("--lr", type=float, default=RECIPE_V2["lr"])
    ap.add_argument("--seg-weight", type=float, default=RECIPE_V2["seg_weight"])
    ap.add_argument("--seed", type=int, default=FINAL_FIT_SEED,
                    help="the protocol's lockbox check fits with the same seed")
    ap.add_argument("--version", type=int, default=2)
    ap.add_argument("--masks", choices=["phantom", "weak", "both"], default=RECIPE_V2["masks"],
                    help="segmentation supervision: weak masks on real clips (v1), phantom clips (pixel-exact), "
                         "or both (weak masks on an auxiliary training-only head, phantom masks on the shipped one)")
    ap.add_argument("--no-gguf", action="store_true",
                    help="write the safetensors and fixtures but not the GGUF (for machines without cargo)")
    ap.add_argument("--phantom-clips", type=int, default=RECIPE_V2["phantom_clips"], help="phantom clips per score and probe")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="v3",
                    help="v3 adds the finding and clip heads (RECIPE_V3); v3ssl starts v3 from pretrain.py's "
                         "encoder; v2 reproduces v2")
    ap.add_argument("--weights", type=Path,
                    help="export these fitted weights (a protocol fit's .pt, e.g. the lockbox fit, which is "
                         "this script's fit with the same seed and data) instead of fitting again")
    ap.add_argument("--aggregation", choices=["attention_ordinal", "mean_probability"],
                    help="the clip rule the file declares (v3 default: attention_ordinal, the clip head); with "
                         "mean_probability a v3 file's heads give findings and the gate only")
    ap.add_argument("--candidate", help="the protocol candidate this file is (its numbers go into cv_metrics); "
                                        "default: the one the report kept")
    ap.add_argument("--cutpoints", type=float, nargs=3,
                    help="the clip head's cut-points to ship, if the protocol chose tuned ones")
    args = ap.parse_args()
    args.size = args.size or RECIPES[args.recipe].get("size", SIZE)
    if args.recipe != "v2":
        for key, value in RECIPES[args.recipe].items():
            if key not in ("size", "epochs", "frames_per_clip", "batch", "lr", "seg_weight", "masks", "phantom_clips"):
                setattr(args, key, value)
        args.version = max(args.version, 3)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    step = getattr(args, "history_step", 0)
    args.cache = cache_dir(args.cache, args.size, step)
    export_cache(args.cache, args.data, args.phantom_clips, args.size, step)
    lockbox, _ = load_lockbox()
    clips = [c for c in load_clips(args.cache, args.masks) if c["group"] not in lockbox]
    phantom = load_phantom(args.cache, "phantom", step) if args.masks in ("phantom", "both") else []
    phantom_test = load_phantom(args.cache, "phantom-test", step)
    print(f"{len(clips)} clips outside the lockbox, {sum(len(c['frames']) for c in clips)} frames, "
          f"{len(phantom)} phantom training clips, device {device}")
    report_path = args.out / "cv-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is None:
        print(f"note: {report_path} is missing; run protocol.py first for the accuracy numbers", flush=True)
    if args.weights:
        model = LusNet(WIDTHS, weak_head=args.masks == "both", v3_heads=getattr(args, "v3_heads", False),
                       in_channels=input_channels(args))
        model.load_state_dict(torch.load(args.weights, map_location="cpu"))
        model.to(device)
        print(f"weights from {args.weights}")
    else:
        model, hist = train_model(clips + phantom, args, device, "final fit", args.seed)
        plot_losses({"final": hist}, args.out)
    if args.cutpoints:
        with torch.no_grad():
            cuts = torch.tensor(sorted(args.cutpoints))
            model.clip.first_cut.copy_(cuts[0])
            model.clip.cut_gaps.copy_(torch.log(torch.expm1(cuts[1:] - cuts[:-1])))  # softplus inverse
    dice = phantom_dice(model, phantom_test, device)
    print("phantom Dice (held-out seeds):", json.dumps(dice))
    export(model, clips, accuracy_summary(report, dice, args.candidate), args)


def accuracy_summary(report, dice, candidate=None):
    """What the model file says of its accuracy: the protocol's pooled BLUES numbers."""
    summary = {"phantom_dice": dice}
    if report:
        name = candidate or (report.get("selection") or {}).get("kept")
        recipe = next((r for r in report["recipes"] if r["name"] == name), None)
        if recipe is None:
            sys.exit(f"the report has no candidate {name!r}: pass --candidate")
        summary |= {"protocol": report["protocol"]["cv"], "recipe": recipe["name"],
                    "blues_pooled": {k: {x: v[x] for x in ("mean", "ci_low", "ci_high")}
                                     for k, v in recipe["pooled"].items() if isinstance(v, dict) and "mean" in v}}
    return summary


def export(model, clips, cv_summary, args):
    model.eval().cpu()
    phantom_masks = (f"phantom masks ({args.phantom_clips} clips x 8 frames per score and probe, "
                     f"pleura dataset phantom)")
    supervision = {
        "weak": "weak segmentation masks (scripts/train/weak_masks.py)",
        "phantom": f"segmentation on {phantom_masks}",
        "both": f"segmentation head on {phantom_masks}; weak masks on real clips train a training-only "
                f"auxiliary head",
    }[args.masks]
    meta = {
        "architecture": "lusnet", "input_size": str(args.size),
        "history_step": str(getattr(args, "history_step", 0)), "widths": ",".join(map(str, WIDTHS)),
        "norm_mean": str(NORM_MEAN), "norm_std": str(NORM_STD), "seg_classes": ",".join(SEG_CLASSES),
        "aggregation": args.aggregation or ("attention_ordinal" if model.clip is not None else "mean_probability"),
        "training_data": f"COVID-BLUES dev split outside the lockbox "
                         f"({sum(c['dataset'] == 'blues' for c in clips)} clips) + POCUS rated clips "
                         f"({sum(c['dataset'] == 'pocus' for c in clips)}); "
                         f"{args.epochs} epochs x {args.frames_per_clip} frames/clip; {supervision}",
        "licenses": LICENSES, "cv_metrics": json.dumps(cv_summary),
    }
    weights = args.out / f"lusnet-v{args.version}.safetensors"
    save_file(model.export_state(), str(weights), metadata=meta)
    print(f"wrote {weights}")
    # The same network for ONNX Runtime (scripts/bench compares with it).
    onnx = args.out / f"lusnet-v{args.version}.onnx"
    export_onnx(model, args.size, onnx)
    print(f"wrote {onnx}")

    # Parity fixture: a few real frames of different scores (a 2.5D model's [3, S, S] inputs) and the
    # network's exact outputs.
    fixture_dir = ROOT / "tests" / "fixtures"
    fixture_dir.mkdir(parents=True, exist_ok=True)
    picks = []
    for score in range(4):
        c = next(c for c in clips if c["dataset"] == "pocus" and c["score"] == score)
        picks.append(model_input(c, [len(c["frames"]) // 2])[0])
    inputs = np.stack(picks)
    frames = inputs[:, 0] if inputs.shape[1] == 1 else inputs
    x = (torch.from_numpy(inputs.astype(np.float32) / 255.0) - NORM_MEAN) / NORM_STD
    with torch.no_grad():
        score, features, emb = model.decode(x)
        seg = model.seg(features)
        outputs = {"frames": torch.from_numpy(frames.copy()), "score_logits": score.contiguous(),
                   "seg_logits": seg.permute(0, 2, 3, 1).contiguous()}
        if model.clip is not None:  # each frame's head outputs (lusnet.py's ClipHead, term by term)
            c = model.clip
            outputs |= {"finding_logits": model.findings(emb).contiguous(),
                        "clip_attention": c.attn_w(torch.tanh(c.attn_v(emb)))[:, 0].contiguous(),
                        "clip_value": c.ordinal(emb)[:, 0].contiguous()}
    save_file(outputs, str(fixture_dir / "parity.safetensors"))
    save_file(model.export_state(), str(fixture_dir / "lusnet-parity-f32.safetensors"), metadata=meta)
    print(f"wrote {fixture_dir / 'parity.safetensors'}")

    if args.no_gguf:
        return
    run_pleura("model", "import", weights, "--quantize", "q8_0", "-o", ROOT / "models" / f"lusnet-v{args.version}.gguf")


if __name__ == "__main__":
    main()
