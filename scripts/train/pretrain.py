#!/usr/bin/env python3
"""Self-supervised pretraining of LusNet's encoder (issue 17, recipe 3).

    .venv/bin/python scripts/train/pretrain.py      # writes target/train/ssl/encoder.pt

VICReg (Bardes, Ponce & LeCun, ICLR 2022) on pairs of nearby frames: two
frames at most `PAIR_GAP` exported frames apart in the same clip, each with
its own training augmentations (train.py `augment`) and a random crop, are
pulled together in the projector's space, while the variance term keeps
every dimension alive and the covariance term keeps them decorrelated:

    loss = 25 · MSE(z, z') + 25 · [hinge(std z) + hinge(std z')] + 1 · [cov(z) + cov(z')]

Breathing moves B-lines and the pleura between nearby frames while rib
shadows and reverberations stay, so "same clip, a moment apart" is a
positive pair that teaches what persists in a zone.

**Frames.** Every POCUS file (rated or not, `dataset export --unrated`),
and the phantom's training clips. The white-lung demo clip is left out
(the card reports it as never trained on). BLUES development frames are
*not* used: pretraining once on them would put the frames of every patient
the cross-validation holds out into the encoder, and one pretraining per
fold (15) is beyond these CPUs. The selection metric (BLUES pooled) stays
strictly patient-disjoint; the POCUS out-of-fold numbers of a pretrained
recipe are transductive (their frames were seen without labels), and the
report says so.

The encoder (LusNet.ENCODER, batch norm included) and its [mean | max]
embedding are LusNet's own; the projector is thrown away. train.py
(`pretrained=`) starts the v3 recipe from these weights.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import train as T  # noqa: E402
from lusnet import LusNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The recipe, fixed before its first run (2026-12-02, issue 17 recipe 3).
SSL = dict(epochs=30, pairs_per_batch=64, lr=2e-3, weight_decay=1e-4, seed=7, projector=512,
           sim_weight=25.0, std_weight=25.0, cov_weight=1.0)
PAIR_GAP = 2  # a positive is at most this many exported frames (of 48 spread over the clip) away
LEFT_OUT = {"Vir_whitelung_h1n1"}  # the white-lung demo clip stays unseen
OUTPUT = ROOT / "target" / "train" / "ssl" / "encoder.pt"


def load_frames(cache):
    """The pretraining clips: [uint8 frames [T, S, S]] of every POCUS file and the phantom's training clips."""
    _, pocus = T.read_frames(cache / "pocus-all")
    return [frames for c, frames in pocus if c["name"] not in LEFT_OUT] + \
        [c["frames"] for c in T.load_phantom(cache, "phantom")]


def export_unrated(cache, data):
    """`pleura dataset export --unrated` of the POCUS folder, once."""
    if not (cache / "pocus-all" / "index.json").exists():
        T.run_pleura("dataset", "export", "--dataset", "pocus", data / "pocus", "--out", cache / "pocus-all",
                     "--size", T.SIZE, "--max-frames", 48, "--unrated")


def pairs(clips, rng):
    """One positive pair per frame, shuffled: (clip, frame, nearby frame of the same clip)."""
    out = []
    for ci, frames in enumerate(clips):
        t = len(frames)
        for fi in range(t):
            lo, hi = max(0, fi - PAIR_GAP), min(t - 1, fi + PAIR_GAP)
            others = [j for j in range(lo, hi + 1) if j != fi] or [fi]
            out.append((ci, fi, int(rng.choice(others))))
    rng.shuffle(out)
    return out


def random_crop(x, gen):
    """A random square crop of 60-100 % of the side, resized back (a stronger view than augment's zoom)."""
    n, dev = x.shape[0], x.device
    u = lambda: torch.rand(n, generator=gen).to(dev)  # noqa: E731
    scale = 0.6 + 0.4 * u()
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = (u() * 2 - 1) * (1 - scale)
    theta[:, 1, 2] = (u() * 2 - 1) * (1 - scale)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def view(frames, gen, device):
    """Normalized augmented views [N, 1, S, S] of uint8 frames [N, S, S]."""
    x = torch.from_numpy(frames.astype(np.float32) / 255.0)[:, None].to(device)
    dummy = torch.full((len(frames), frames.shape[-1] // 4, frames.shape[-1] // 4), -1, dtype=torch.long,
                       device=device)
    x, _ = T.augment(random_crop(x, gen), dummy, gen)
    return (x - T.NORM_MEAN) / T.NORM_STD


def projector(dim_in, dim):
    return nn.Sequential(nn.Linear(dim_in, dim), nn.BatchNorm1d(dim), nn.ReLU(),
                         nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, dim))


def vicreg(z1, z2, cfg):
    """(loss, {term: value}) of VICReg on two batches of projections."""
    sim = F.mse_loss(z1, z2)

    def std_cov(z):
        z = z - z.mean(0)
        std = torch.sqrt(z.var(0) + 1e-4)
        cov = (z.T @ z) / (len(z) - 1)
        off = cov - torch.diag(torch.diag(cov))
        return F.relu(1 - std).mean(), off.pow(2).sum() / z.shape[1], std.mean()

    s1, c1, sd1 = std_cov(z1)
    s2, c2, sd2 = std_cov(z2)
    loss = cfg["sim_weight"] * sim + cfg["std_weight"] * (s1 + s2) + cfg["cov_weight"] * (c1 + c2)
    return loss, {"sim": sim.item(), "std_hinge": (s1 + s2).item() / 2, "cov": (c1 + c2).item() / 2,
                  "embedding_std": (sd1 + sd2).item() / 2}


def pretrain(clips, cfg, device, epochs=None):
    """The pretrained LusNet (encoder weights set) and the per-epoch history."""
    epochs = epochs or cfg["epochs"]
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    model = LusNet(T.WIDTHS).to(device)
    proj = projector(2 * T.WIDTHS[-1], cfg["projector"]).to(device)
    params = [p for name in LusNet.ENCODER for p in getattr(model, name).parameters()] + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    steps = math.ceil(sum(len(c) for c in clips) / cfg["pairs_per_batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=epochs * steps)
    history = []
    for epoch in range(epochs):
        model.train()
        proj.train()
        t0, sums, n = time.time(), {}, 0
        items = pairs(clips, rng)
        for i in range(0, len(items), cfg["pairs_per_batch"]):
            batch = items[i:i + cfg["pairs_per_batch"]]
            if len(batch) < 8:  # batch-norm and the covariance need a real batch
                continue
            a = np.stack([clips[ci][fi] for ci, fi, _ in batch])
            b = np.stack([clips[ci][fj] for ci, _, fj in batch])
            z1, z2 = (proj(model.encode(view(v, gen, device))[-1]) for v in (a, b))
            loss, terms = vicreg(z1, z2, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            for k, v in ({"loss": loss.item()} | terms).items():
                sums[k] = sums.get(k, 0.0) + v * len(batch)
            n += len(batch)
        history.append({k: v / n for k, v in sums.items()} | {"seconds": time.time() - t0})
        print(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.3f}" for k, v in history[-1].items()), flush=True)
    return model, history


def encoder_state(model):
    """The encoder's parameters and batch-norm statistics (LusNet state-dict names)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k.split(".")[0] in LusNet.ENCODER}


def plot_history(history, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.5))
    for a, key, title in zip(ax, ["loss", "sim", "embedding_std"],
                             ["VICReg loss", "invariance (MSE of the two views)", "std of projections (collapse: 0)"]):
        a.plot(range(1, len(history) + 1), [h[key] for h in history])
        a.set(title=title, xlabel="epoch")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "target" / "train-cache")
    ap.add_argument("--out", type=Path, default=OUTPUT)
    ap.add_argument("--epochs", type=int, default=SSL["epochs"], help="the recipe's 30; less only to test")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    T.export_cache(args.cache, args.data, T.RECIPE_V2["phantom_clips"])
    export_unrated(args.cache, args.data)
    clips = load_frames(args.cache)
    print(f"{len(clips)} clips, {sum(len(c) for c in clips)} frames, device {device}", flush=True)
    model, history = pretrain(clips, SSL, device, args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(encoder_state(model), args.out)
    (args.out.parent / "history.json").write_text(json.dumps({"recipe": SSL, "pair_gap": PAIR_GAP,
                                                              "clips": len(clips), "history": history}, indent=1))
    plot_history(history, args.out.parent / "ssl-loss.png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
