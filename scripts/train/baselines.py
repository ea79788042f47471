"""The two baselines every recipe is compared with, on the same folds.

* **majority**: the most frequent expert score of the training clips of the
  same dataset; its finding scores are constant (AUC 0.5).
* **features + logistic regression**: an L2-regularized multinomial logistic
  regression on simple per-clip intensity features of the exported frames
  (the model's own 128x128 input), with balanced class weights; one binary
  regression per predicted finding. The regularization strength is chosen
  inside the training part only, by grouped CV (no held-out clip is seen).

A network that does not beat the second baseline is not learning the task.

Features (means over the clip's frames unless said otherwise):
  * depth bands: the mean and standard deviation of 8 horizontal bands;
  * bright vertical streaks below the top quarter: the share of columns
    brighter than 1.25x the median column, the 90th-percentile and maximum
    column contrast, and how much the column profile changes in time;
  * horizontal band periodicity (A-lines): the highest autocorrelation of
    the detrended row profile at lags of 8-64 rows, and its lag;
  * the whole frame: mean, deviation, share of dark pixels in the lower
    half, and frame-to-frame change.
"""
import warnings

import numpy as np

from cv_stats import FINDING_SCORES

BANDS = 8
FINDINGS = list(FINDING_SCORES)  # the findings the network predicts


def clip_features(frames):
    """frames: [T, S, S] uint8 -> 1-D feature vector."""
    x = frames.astype(np.float32) / 255.0
    t, s, _ = x.shape
    bands = x.reshape(t, BANDS, s // BANDS, s)
    feats = list(bands.mean((0, 2, 3))) + list(bands.std((2, 3)).mean(0))
    lower = x[:, s // 4:, :]
    cols = lower.mean(1)  # [T, S]
    med = np.median(cols, 1, keepdims=True) + 1e-3
    contrast = cols / med
    feats += [
        float((contrast > 1.25).mean()),
        float(np.percentile(contrast, 90, axis=1).mean()),
        float(contrast.max(1).mean()),
        float(cols.std(0).mean() / (cols.mean() + 1e-3)),
    ]
    rows = x.mean((0, 2))
    rows = rows - np.convolve(rows, np.ones(15) / 15, mode="same")
    rows = rows[8:-8]
    ac = np.correlate(rows, rows, mode="full")[len(rows) - 1:]
    ac = ac / (ac[0] + 1e-9)
    lags = np.arange(8, min(64, len(ac)))
    best = lags[np.argmax(ac[lags])]
    feats += [float(ac[best]), float(best / s)]
    motion = float(np.abs(np.diff(x, axis=0)).mean()) if t > 1 else 0.0
    feats += [float(x.mean()), float(x.std()), float((x[:, s // 2:, :] < 0.08).mean()), motion]
    return np.array(feats, dtype=np.float64)


def _logistic(x, y, groups):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
    n_groups = len(set(groups))
    if len(set(y)) < 2:
        return None
    if n_groups >= 3:
        splits = list(GroupKFold(n_splits=min(5, n_groups)).split(x, y, groups))
        lr = LogisticRegressionCV(Cs=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0], cv=splits, class_weight="balanced",
                                  scoring="neg_log_loss", max_iter=5000)
    else:
        lr = LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000)
    return make_pipeline(StandardScaler(), lr).fit(x, y)


def fit_predict(train, test):
    """Both baselines trained on `train` clips, predicting `test` clips.

    Clips are dicts with dataset, group, score, findings, features. Returns
    {"majority": [(pred, probs, scores)], "features": [...]} in test order."""
    out = {"majority": [], "features": []}
    majority = {}
    for dataset in {c["dataset"] for c in train}:
        counts = np.bincount([c["score"] for c in train if c["dataset"] == dataset], minlength=4)
        majority[dataset] = int(np.argmax(counts))
    fallback = int(np.argmax(np.bincount([c["score"] for c in train], minlength=4)))
    for c in test:
        k = majority.get(c["dataset"], fallback)
        out["majority"].append((k, np.eye(4)[k].tolist(), {f: 0.0 for f in FINDINGS}))

    x = np.stack([c["features"] for c in train])
    groups = [c["group"] for c in train]
    score_model = _logistic(x, np.array([c["score"] for c in train]), groups)
    finding_models = {}
    for f in FINDINGS:
        lab = [(i, c["findings"][f]) for i, c in enumerate(train) if c["findings"].get(f) is not None]
        if lab:
            idx = [i for i, _ in lab]
            finding_models[f] = _logistic(x[idx], np.array([int(v) for _, v in lab]),
                                          [groups[i] for i in idx])
    xt = np.stack([c["features"] for c in test])
    probs = np.zeros((len(test), 4))
    probs[:, score_model.classes_] = score_model.predict_proba(xt)
    found = {f: (m.predict_proba(xt)[:, 1] if m is not None else np.zeros(len(test)))
             for f, m in finding_models.items()}
    for i in range(len(test)):
        out["features"].append((int(np.argmax(probs[i])), probs[i].tolist(),
                                {f: float(v[i]) for f, v in found.items()}))
    return out

