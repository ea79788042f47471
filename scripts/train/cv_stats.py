"""Splits and statistics of the cross-validation protocol (numpy only).

* Folds and the lockbox are made of whole groups (a BLUES patient, a POCUS
  name stem), stratified by each group's *worst* score.
* Metrics follow src/eval/metrics.rs (scikit-learn conventions): accuracy,
  macro-F1 over the classes present, quadratic-weighted kappa, MAE, ROC AUC
  with ties counted half, and the exam-total error with one score per zone
  (the worst of its recordings).
* Intervals come from a bootstrap that resamples groups (patients), not
  clips. Each draw is a vector of group counts; a clip weighs its group's
  count, so every metric is computed for all draws at once from weighted
  confusion matrices and weighted rank sums.
"""
import json
from pathlib import Path

import numpy as np

K = 4  # Soldati scores 0-3
LOCKBOX = Path(__file__).parent / "lockbox.json"


def load_lockbox():
    """(the lockbox's groups as load_clips names them, e.g. `blues:patient_17`; the file's content)."""
    box = json.loads(LOCKBOX.read_text())
    return {f"{box['dataset']}:{p}" for p in box["patients"]}, box


# ------------------------------------------------------------------ splits

def worst_scores(clips):
    """{group: worst expert score of its clips}."""
    worst = {}
    for c in clips:
        worst[c["group"]] = max(worst.get(c["group"], 0), c["score"])
    return worst


def stratified_groups(worst, n_parts, rng):
    """Deals groups into n_parts parts: stratum by stratum (worst score), shuffled
    within the stratum, round-robin with the dealer's position carried across
    strata so the parts stay within one group of each other in size."""
    part, pos = {}, 0
    for stratum in sorted(set(worst.values())):
        groups = sorted(g for g, w in worst.items() if w == stratum)
        for g in rng.permutation(groups):
            part[str(g)] = pos % n_parts
            pos += 1
    return part


def make_lockbox(clips, fraction, seed):
    """About `fraction` of the groups, stratified by worst score (fixed seed)."""
    worst = worst_scores(clips)
    rng = np.random.default_rng(seed)
    chosen = []
    for stratum in sorted(set(worst.values())):
        groups = sorted(g for g, w in worst.items() if w == stratum)
        n = int(round(fraction * len(groups)))
        chosen += [str(g) for g in rng.permutation(groups)[:n]]
    return sorted(chosen)


def make_folds(clips, k, seed):
    """Fold of each group, per dataset, stratified by the group's worst score."""
    rng = np.random.default_rng(seed)
    fold = {}
    for dataset in sorted({c["dataset"] for c in clips}):
        fold |= stratified_groups(worst_scores([c for c in clips if c["dataset"] == dataset]), k, rng)
    return fold


# ----------------------------------------------------------------- metrics

def _confusion_metrics(m):
    """Metrics of confusion matrices m [..., K, K] (rows truth, columns prediction), weighted counts."""
    n = m.sum((-1, -2))
    rows, cols = m.sum(-1), m.sum(-2)
    diag = np.diagonal(m, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(rows + cols > 0, 2 * diag / np.maximum(rows + cols, 1e-12), 0.0)
        present = (rows + cols) > 0
        macro = (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)
        i = np.arange(K)
        w = ((i[:, None] - i[None]) / (K - 1)) ** 2
        expected = rows[..., :, None] * cols[..., None, :] / np.maximum(n, 1e-12)[..., None, None]
        denom = (w * expected).sum((-1, -2))
        qwk = np.where(denom > 0, 1 - (w * m).sum((-1, -2)) / np.where(denom > 0, denom, 1), 1.0)
        dist = np.abs(i[:, None] - i[None])
        return {
            "accuracy": diag.sum(-1) / np.maximum(n, 1e-12),
            "macro_f1": macro,
            "weighted_f1": (f1 * rows).sum(-1) / np.maximum(n, 1e-12),
            "qwk": qwk,
            "mae": (dist * m).sum((-1, -2)) / np.maximum(n, 1e-12),
        }


def _weighted_auc(scores, labels, weights):
    """ROC AUC (ties half) of scores against boolean labels, for each row of weights [D, n]."""
    levels, level = np.unique(scores, return_inverse=True)
    onehot = np.zeros((len(scores), len(levels)))
    onehot[np.arange(len(scores)), level] = 1.0
    pos = weights @ (onehot * labels[:, None])
    neg = weights @ (onehot * ~labels[:, None])
    below = np.cumsum(neg, 1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(1)
    total = pos.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, wins / np.where(total > 0, total, 1), np.nan)


def _weighted_quantile(values, weights, q):
    """Quantile of values for each row of weights [D, n] (nearest rank on the weighted CDF)."""
    order = np.argsort(values)
    v, w = values[order], weights[:, order]
    cdf = np.cumsum(w, 1)
    total = cdf[:, -1:]
    idx = (cdf < q * total).sum(1)
    out = v[np.minimum(idx, len(v) - 1)]
    return np.where(total[:, 0] > 0, out, np.nan)


def exam_errors(rows):
    """{patient: |exam total of truth - of prediction|}, one score per zone: the worst recording."""
    zones = {}
    for r in rows:
        z = zones.setdefault(r["group"], {}).setdefault(r.get("zone") or r["name"], [0, 0])
        z[0], z[1] = max(z[0], r["truth"]), max(z[1], r["pred"])
    return {g: abs(sum(t for t, _ in z.values()) - sum(p for _, p in z.values())) for g, z in zones.items()}


FINDING_SCORES = {"b_lines": "b_line", "consolidation": "consolidation"}


def metric_draws(rows, groups, weights):
    """Every metric of one set of predictions (one seed) for each row of group weights [D, G].

    rows: dicts with group, zone, name, truth, pred, findings (labels), and for each
    predicted finding a score in scores[finding]."""
    gi = {g: i for i, g in enumerate(groups)}
    idx = np.array([gi[r["group"]] for r in rows])
    w = weights[:, idx]  # [D, n]
    cell = np.array([r["truth"] * K + r["pred"] for r in rows])
    onehot = np.zeros((len(rows), K * K))
    onehot[np.arange(len(rows)), cell] = 1.0
    m = (w @ onehot).reshape(-1, K, K)
    out = _confusion_metrics(m)
    errors = exam_errors(rows)
    e = np.array([errors.get(g, np.nan) for g in groups])
    has = ~np.isnan(e)
    if has.any() and rows[0].get("zone"):
        out["exam_mae"] = (weights[:, has] @ e[has]) / np.maximum(weights[:, has].sum(1), 1e-12)
    for finding in FINDING_SCORES:
        sel = [i for i, r in enumerate(rows) if r["findings"].get(finding) is not None
               and r["scores"].get(finding) is not None]
        if not sel:
            continue
        s = np.array([rows[i]["scores"][finding] for i in sel], dtype=float)
        lab = np.array([bool(rows[i]["findings"][finding]) for i in sel])
        out[f"auc_{finding}"] = _weighted_auc(s, lab, w[:, sel])
    # False tint: segmented B-line area on clips the experts call B-line-negative.
    neg = [i for i, r in enumerate(rows) if r["findings"].get("b_lines") is False and "bline_area" in r]
    if neg:
        area = np.array([rows[i]["bline_area"] for i in neg])
        out["bline_negative_median"] = _weighted_quantile(area, w[:, neg], 0.5)
        out["bline_negative_p90"] = _weighted_quantile(area, w[:, neg], 0.9)
        if "bline_area_ungated" in rows[neg[0]]:  # v3: the same tint without the B-line head's gate
            area = np.array([rows[i]["bline_area_ungated"] for i in neg])
            out["bline_negative_median_ungated"] = _weighted_quantile(area, w[:, neg], 0.5)
    return out


def pooled_with_intervals(rows_by_seed, draws=2000, seed=0, level=0.95):
    """Pooled metrics of out-of-fold predictions and their bootstrap intervals.

    rows_by_seed: {seed: [row, ...]}, the same clips under each seed's folds. The point
    value is the mean over seeds of the metric on that seed's pooled rows; each bootstrap
    draw resamples groups (patients) with replacement, applies the same draw to every
    seed and averages over seeds. Returns ({metric: {mean, ci_low, ci_high, per_seed}},
    {metric: draws}) - the draws allow paired comparisons (same `seed` = same draws)."""
    groups = sorted({r["group"] for rows in rows_by_seed.values() for r in rows})
    rng = np.random.default_rng(seed)
    boot = rng.multinomial(len(groups), np.full(len(groups), 1 / len(groups)), size=draws).astype(float)
    ones = np.ones((1, len(groups)))
    point, sampled = {}, {}
    for rows in rows_by_seed.values():
        for key, v in metric_draws(rows, groups, ones).items():
            point.setdefault(key, []).append(float(v[0]))
        for key, v in metric_draws(rows, groups, boot).items():
            sampled.setdefault(key, []).append(v)
    out, mean_draws = {}, {}
    for key, per_seed in point.items():
        d = np.nanmean(np.stack(sampled[key]), 0) if not np.isnan(per_seed).all() else np.full(draws, np.nan)
        mean_draws[key] = d
        lo, hi = (np.nanpercentile(d, [50 * (1 - level), 50 * (1 + level)]) if np.isfinite(d).any()
                  else (np.nan, np.nan))
        mean = float(np.nanmean(per_seed)) if not np.isnan(per_seed).all() else None
        out[key] = {"mean": mean, "ci_low": _num(lo), "ci_high": _num(hi),
                    "per_seed": [_num(v) for v in per_seed]}
    return out, mean_draws


def difference(draws_a, draws_b, point_a, point_b, level=0.95):
    """Paired bootstrap interval of a - b for each metric both have (same draws)."""
    out = {}
    for key in [k for k in draws_a if k in draws_b]:  # a's order, so the report is stable
        if point_a[key]["mean"] is None or point_b[key]["mean"] is None:
            continue
        d = draws_a[key] - draws_b[key]
        if not np.isfinite(d).any():
            continue
        lo, hi = np.nanpercentile(d, [50 * (1 - level), 50 * (1 + level)])
        out[key] = {"mean": point_a[key]["mean"] - point_b[key]["mean"], "ci_low": float(lo), "ci_high": float(hi)}
    return out


def confusion(rows):
    m = np.zeros((K, K), np.int64)
    for r in rows:
        m[r["truth"], r["pred"]] += 1
    return m.tolist()


def _num(v):
    v = float(v)
    return None if np.isnan(v) else v
