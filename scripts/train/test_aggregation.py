"""The v3 aggregation variants (aggregation.py), checked by hand.

    python3 -m pytest -q scripts/train/test_aggregation.py   # numpy and pytest; no PyTorch
"""
import numpy as np

import aggregation as A


def fake_clip(name, fold, truth, z, b_logit=0.0, dataset="blues", frames=6):
    view = {"frame_probs": [[0.7, 0.1, 0.1, 0.1]] * frames,
            "finding_logits": [[0.0, b_logit, -2.0, 0.0]] * frames,
            "b_area": [0.2] * frames, "c_area": [0.0] * frames, "z": z}
    return {"name": name, "dataset": dataset, "group": f"{dataset}:{name}", "zone": None, "fold": fold,
            "truth": truth, "findings": {"b_lines": b_logit > 0, "consolidation": None},
            "plain": view, "flip": dict(view, z=z + 0.2)}


def test_lse_pool_lies_between_mean_and_max():
    x = np.array([[-2.0], [0.0], [3.0]])
    pooled = A.lse_pool(x)[0]
    assert x.mean() < pooled < x.max()
    assert abs(A.lse_pool(x, r=1e-4)[0] - x.mean()) < 1e-3


def test_tuned_cutpoints_separate_a_separable_set():
    z = np.array([0.0, 0.1, 1.0, 1.1, 2.0, 2.1, 3.0, 3.1] * 3)
    truth = np.array([0, 0, 1, 1, 2, 2, 3, 3] * 3)
    cuts = A.tune_cutpoints(z, truth)
    assert list((z[:, None] > cuts[None]).sum(1)) == list(truth)
    assert np.all(np.diff(cuts) > 0)


def test_tuned_cutpoints_never_see_their_own_fold():
    # Fold 0's clips alone would move the cut-points; its rows must be scored with cut-points
    # tuned on folds 1 and 2 only, which put z = 1.5 in score 1.
    fits = {1: [{"cutpoints": [0.5, 1.0, 3.0], "clips": [fake_clip(f"p{f}{i}", f, t, z)
                                                       for i, (t, z) in enumerate([(0, 0.0), (1, 1.5), (2, 2.5),
                                                                                   (3, 3.5)] * 2)]}
                for f in (1, 2)]}
    fits[1].append({"cutpoints": [0.5, 1.0, 3.0], "clips": [fake_clip("x", 0, 3, 1.5)]})
    rows = {r["name"]: r for r in A.variant_rows(fits, "clip-tuned")[1]}
    assert rows["x"]["pred"] == 1
    # As trained, cut-points [0.5, 1.0, 3.0] put 1.5 in score 2.
    assert {r["name"]: r for r in A.variant_rows(fits, "clip")[1]}["x"]["pred"] == 2


def test_the_gate_removes_the_tint_where_the_b_line_head_says_no():
    fits = {1: [{"cutpoints": [0.0, 1.0, 2.0], "clips": [fake_clip("neg", 0, 0, 0.0, b_logit=-3.0),
                                                         fake_clip("pos", 0, 2, 1.5, b_logit=3.0)]}]}
    rows = {r["name"]: r for r in A.variant_rows(fits, "mean")[1]}
    assert rows["neg"]["bline_area"] == 0.0 and abs(rows["neg"]["bline_area_ungated"] - 0.2) < 1e-9
    assert abs(rows["pos"]["bline_area"] - 0.2) < 1e-9
    assert rows["pos"]["scores"]["b_lines"] > 0.9 > 0.1 > rows["neg"]["scores"]["b_lines"]


def test_flip_averages_the_clip_value():
    fits = {1: [{"cutpoints": [0.0, 1.0, 1.1], "clips": [fake_clip("a", 0, 1, 0.9)]}]}
    assert A.variant_rows(fits, "clip")[1][0]["pred"] == 1
    assert A.variant_rows(fits, "clip-flip")[1][0]["pred"] == 1  # z = (0.9 + 1.1) / 2 = 1.0: not above t2 = 1.0
    fits[1][0]["clips"][0]["flip"]["z"] = 1.2
    assert A.variant_rows(fits, "clip-flip")[1][0]["pred"] == 2  # z = 1.05
