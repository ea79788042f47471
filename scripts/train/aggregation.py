"""From a v3 fit's raw outputs on held-out clips to clip predictions (numpy only).

A v3 fit saves, for every held-out clip, what each head said about each of
its frames, with and without a left-right flip (`train.predict_clip_v3`).
The ways of turning those into a clip score are compared here on the same
fits, so that comparing them costs no training:

* `mean`: the mean of the frame probabilities (v2's rule, recipe 2 alone);
* `clip`: the clip head (attention over frame embeddings, ordinal cut-points
  learned in training; recipe 1);
* `clip-tuned`: the clip head's value with cut-points tuned on out-of-fold
  predictions of the *other* folds of the same seed and dataset (nested: a
  clip's cut-points never saw it or its fold);
* `...-flip`: the same with frame outputs averaged over the frame and its
  mirror image (recipe 5, test-time augmentation).

Finding scores for every variant: the log-sum-exp pool of the frames'
finding logits (the runtime's rule). The B-line tint is gated: a frame's
B-line area counts only where that frame's B-line head says yes (p >= 0.5).
"""
import itertools

import numpy as np

import cv_stats

FINDINGS = ["a_lines", "b_lines", "consolidation", "pleura_abnormal"]
FINDING_POOL_SHARPNESS = 4.0
GATE = 0.5
VARIANTS = ["mean", "clip", "clip-tuned", "clip-flip", "clip-flip-tuned"]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def lse_pool(logits, r=FINDING_POOL_SHARPNESS):
    """(1/r) log mean exp(r x) over the first axis, computed stably."""
    x = r * np.asarray(logits, dtype=float)
    m = x.max(0)
    return (m + np.log(np.exp(x - m).mean(0))) / r


def ordinal_pred(z, cuts):
    """The score: how many cut-points z lies above."""
    return int(np.sum(z > np.asarray(cuts)))


def ordinal_probs(z, cuts):
    above = sigmoid(z - np.asarray(cuts))
    cum = np.concatenate([[1.0], above, [0.0]])
    return np.clip(cum[:-1] - cum[1:], 0, None)


def tune_cutpoints(z, truth, steps=20):
    """Increasing cut-points, chosen among the quantiles of z (every 1/steps), that maximize
    macro-F1 + QWK of `sum(z > cuts)` against truth. Ties go to the first triple found."""
    z, truth = np.asarray(z, float), np.asarray(truth, int)
    grid = np.unique(np.quantile(z, np.arange(1, steps) / steps))
    best, best_value = None, -np.inf
    for cuts in itertools.combinations(grid, 3):
        pred = (z[:, None] > np.array(cuts)[None]).sum(1)
        m = np.zeros((cv_stats.K, cv_stats.K))
        np.add.at(m, (truth, pred), 1.0)
        metrics = cv_stats._confusion_metrics(m)
        value = float(metrics["macro_f1"] + metrics["qwk"])
        if value > best_value:
            best, best_value = cuts, value
    return np.array(best if best is not None else [0.0, 1.0, 2.0])


def _outputs(clip, flip):
    """Frame probabilities, finding logits and the clip head's z, flip-averaged if asked."""
    p = clip["plain"]
    if not flip:
        return np.asarray(p["frame_probs"]), np.asarray(p["finding_logits"]), p["z"]
    f = clip["flip"]
    return ((np.asarray(p["frame_probs"]) + np.asarray(f["frame_probs"])) / 2,
            (np.asarray(p["finding_logits"]) + np.asarray(f["finding_logits"])) / 2, (p["z"] + f["z"]) / 2)


def clip_value(clip, flip=False):
    """The clip head's value z for a clip (mirror-averaged with `flip`)."""
    return _outputs(clip, flip)[2]


def clip_findings(logits):
    """{finding: probability} of a clip from its frames' finding logits."""
    pooled = sigmoid(lse_pool(logits))
    return {f: float(pooled[i]) for i, f in enumerate(FINDINGS)}


def bline_tint(clip, logits, gated=True):
    """Mean B-line area of a clip's frames; gated: only frames whose B-line head says yes."""
    area = np.asarray(clip["plain"]["b_area"], float)
    if not gated:
        return float(area.mean())
    keep = sigmoid(np.asarray(logits)[:, FINDINGS.index("b_lines")]) >= GATE
    return float((area * keep).mean())


def variant_rows(fits, variant, tune_on=None):
    """{seed: [row]} for one aggregation variant, from {seed: [fit output]} (one per fold).

    Tuned cut-points come from the other folds of the same seed and dataset, or, with
    `tune_on` ({seed: [fit output]}, the CV fits, for the lockbox fit), from all of those."""
    flip = "flip" in variant
    if tune_on and variant.endswith("tuned"):
        cv_clips = [c for fs in tune_on.values() for f in fs for c in f["clips"]]
        fixed = {d: tune_cutpoints([_outputs(c, flip)[2] for c in cv_clips if c["dataset"] == d],
                                   [c["truth"] for c in cv_clips if c["dataset"] == d])
                 for d in {c["dataset"] for c in cv_clips}}
    rows_by_seed = {}
    for seed, seed_fits in fits.items():
        clips = [(fit, c) for fit in seed_fits for c in fit["clips"]]
        z_all = np.array([_outputs(c, flip)[2] for _, c in clips])
        rows, tuned = [], {}
        for fit, c in clips:
            probs, logits, z = _outputs(c, flip)
            if variant == "mean":
                mean = probs.mean(0)
                pred, out_probs = int(np.argmax(mean)), mean
            else:
                cuts = fit["cutpoints"]
                if variant.endswith("tuned") and tune_on:
                    cuts = fixed[c["dataset"]]
                elif variant.endswith("tuned"):
                    key = (c["fold"], c["dataset"])
                    if key not in tuned:
                        others = [j for j, (_, o) in enumerate(clips)
                                  if o["fold"] != c["fold"] and o["dataset"] == c["dataset"]]
                        tuned[key] = tune_cutpoints(z_all[others], [clips[j][1]["truth"] for j in others])
                    cuts = tuned[key]
                pred, out_probs = ordinal_pred(z, cuts), ordinal_probs(z, cuts)
            found = clip_findings(logits)
            rows.append({
                "name": c["name"], "dataset": c["dataset"], "group": c["group"], "zone": c.get("zone"),
                "fold": c["fold"], "seed": seed, "truth": c["truth"], "pred": int(pred),
                "probs": [float(p) for p in out_probs], "findings": c["findings"],
                "scores": {"b_lines": found["b_lines"], "consolidation": found["consolidation"]},
                "bline_area": bline_tint(c, logits), "bline_area_ungated": bline_tint(c, logits, gated=False),
            })
        rows_by_seed[seed] = rows
    return rows_by_seed


def ensemble_rows(fits, variant):
    """{0: [row]}: each clip's outputs averaged over the seeds (each seed held it out once, in a
    model that never saw its patient), i.e. an ensemble of len(fits) models. Variants: "mean"
    (mean frame probabilities) or "clip-flip" (mirror-averaged clip values; cut-points averaged)."""
    by_clip = {}
    for seed_fits in fits.values():
        for fit in seed_fits:
            for c in fit["clips"]:
                by_clip.setdefault((c["dataset"], c["name"]), []).append((fit, c))
    rows = []
    for members in by_clip.values():
        c = members[0][1]
        outs = [_outputs(m, variant != "mean") for _, m in members]
        logits = np.mean([o[1] for o in outs], 0)
        if variant == "mean":
            probs = np.mean([o[0].mean(0) for o in outs], 0)
            pred = int(np.argmax(probs))
        else:
            z = float(np.mean([o[2] for o in outs]))
            cuts = np.mean([f["cutpoints"] for f, _ in members], 0)
            pred, probs = ordinal_pred(z, cuts), ordinal_probs(z, cuts)
        found = clip_findings(logits)
        area = np.mean([np.asarray(m["plain"]["b_area"], float).mean() for _, m in members])
        gated = np.mean([bline_tint(m, _outputs(m, False)[1]) for _, m in members])
        rows.append({
            "name": c["name"], "dataset": c["dataset"], "group": c["group"], "zone": c.get("zone"),
            "fold": -1, "seed": 0, "truth": c["truth"], "pred": int(pred), "probs": [float(p) for p in probs],
            "findings": c["findings"], "scores": {"b_lines": found["b_lines"], "consolidation": found["consolidation"]},
            "bline_area": float(gated), "bline_area_ungated": float(area),
        })
    return {0: rows}
