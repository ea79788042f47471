"""The protocol's statistics, checked against scikit-learn and by hand.

    python3 -m pytest -q scripts/train/test_cv_stats.py   # numpy, scikit-learn, pytest; no PyTorch
"""
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, mean_absolute_error, roc_auc_score

import cv_stats


def synthetic_rows(n_patients=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for z in ["L1", "L2", "R1"]:
            truth = int(rng.integers(0, 4))
            pred = int(np.clip(truth + rng.integers(-1, 2), 0, 3))
            b = bool(rng.random() < 0.5)
            rows.append({"name": f"patient_{p}_{z}", "group": f"blues:patient_{p}", "zone": z, "dataset": "blues",
                         "truth": truth, "pred": pred, "findings": {"b_lines": b, "consolidation": None},
                         "scores": {"b_lines": float(rng.random() + 0.3 * b), "consolidation": 0.0},
                         "bline_area": float(rng.random())})
    return rows


def test_unit_weights_reproduce_scikit_learn():
    rows = synthetic_rows()
    groups = sorted({r["group"] for r in rows})
    m = cv_stats.metric_draws(rows, groups, np.ones((1, len(groups))))
    t, p = [r["truth"] for r in rows], [r["pred"] for r in rows]
    assert m["accuracy"][0] == pytest.approx(accuracy_score(t, p))
    assert m["macro_f1"][0] == pytest.approx(f1_score(t, p, average="macro"))
    assert m["weighted_f1"][0] == pytest.approx(f1_score(t, p, average="weighted"))
    assert m["qwk"][0] == pytest.approx(cohen_kappa_score(t, p, weights="quadratic"))
    assert m["mae"][0] == pytest.approx(mean_absolute_error(t, p))
    auc = roc_auc_score([r["findings"]["b_lines"] for r in rows], [r["scores"]["b_lines"] for r in rows])
    assert m["auc_b_lines"][0] == pytest.approx(auc)
    assert "auc_consolidation" not in m, "no clip has a consolidation label"


def test_a_bootstrap_draw_equals_the_metric_on_the_resampled_clips():
    rows = synthetic_rows()
    groups = sorted({r["group"] for r in rows})
    counts = np.bincount([0, 0, 3, 7, 7, 7], minlength=len(groups)).astype(float)
    m = cv_stats.metric_draws(rows, groups, counts[None])
    resampled = [r for g, c in zip(groups, counts) for _ in range(int(c)) for r in rows if r["group"] == g]
    t, p = [r["truth"] for r in resampled], [r["pred"] for r in resampled]
    assert m["macro_f1"][0] == pytest.approx(f1_score(t, p, average="macro"))
    assert m["qwk"][0] == pytest.approx(cohen_kappa_score(t, p, weights="quadratic"))
    auc = roc_auc_score([r["findings"]["b_lines"] for r in resampled], [r["scores"]["b_lines"] for r in resampled])
    assert m["auc_b_lines"][0] == pytest.approx(auc)
    errors = cv_stats.exam_errors(rows)
    assert m["exam_mae"][0] == pytest.approx(np.mean([errors[groups[i]] for i in [0, 0, 3, 7, 7, 7]]))


def test_exam_totals_take_the_worst_recording_of_a_zone():
    rows = [
        {"name": "patient_1_L1", "group": "p1", "zone": "L1", "truth": 0, "pred": 2},
        {"name": "patient_1_L1_2", "group": "p1", "zone": "L1", "truth": 3, "pred": 1},
        {"name": "patient_1_L2", "group": "p1", "zone": "L2", "truth": 1, "pred": 1},
    ]
    # truth 3 + 1 = 4, prediction 2 + 1 = 3
    assert cv_stats.exam_errors(rows) == {"p1": 1}


def test_intervals_cover_the_point_and_are_paired_across_recipes():
    rows = synthetic_rows(40)
    stats, draws = cv_stats.pooled_with_intervals({1: rows, 2: rows}, draws=400)
    for key in ["macro_f1", "qwk", "exam_mae", "auc_b_lines"]:
        s = stats[key]
        assert s["ci_low"] <= s["mean"] <= s["ci_high"], key
        assert s["per_seed"][0] == s["per_seed"][1]
    same = cv_stats.difference(draws, draws, stats, stats)
    assert same["macro_f1"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}


def test_folds_and_lockbox_keep_patients_whole_and_strata_balanced():
    clips = [{"group": f"blues:patient_{p}", "dataset": "blues", "score": min(3, p % 5)} for p in range(42)
             for _ in range(6)]
    fold = cv_stats.make_folds(clips, 5, seed=1)
    assert set(fold) == {c["group"] for c in clips}
    sizes = np.bincount(list(fold.values()))
    assert sizes.max() - sizes.min() <= 1
    worst = cv_stats.worst_scores(clips)
    for stratum in set(worst.values()):
        per_fold = np.bincount([fold[g] for g, w in worst.items() if w == stratum], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, stratum
    assert cv_stats.make_folds(clips, 5, seed=1) == fold
    assert cv_stats.make_folds(clips, 5, seed=2) != fold
    box = cv_stats.make_lockbox(clips, 0.2, seed=7)
    assert 7 <= len(box) <= 10
    assert box == cv_stats.make_lockbox(clips, 0.2, seed=7)
