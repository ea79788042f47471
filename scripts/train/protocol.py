#!/usr/bin/env python3
"""The accuracy protocol: repeated patient-grouped cross-validation with
bootstrap intervals, two baselines on the same folds, and a lockbox.

    .venv/bin/python scripts/train/protocol.py             # everything (about 1 h on 2 CPUs)
    .venv/bin/python scripts/train/protocol.py --report-only

1. **Lockbox** (`scripts/train/lockbox.json`, made once by `--make-lockbox`
   and committed): about 20 % of the BLUES patients, stratified by each
   patient's worst score. No recipe comparison looks at it. The recipe is
   fitted once on everything else and checked on it once.
2. **Repeated CV** on the rest: 3 seeds x 5 folds, whole groups (BLUES
   patients, POCUS name stems) stratified by their worst score. Every
   held-out clip's prediction is saved (`target/train/protocol/`), and a
   killed run resumes from the runs it finished.
3. **Intervals**: metrics pooled over the out-of-fold predictions (the
   mean over seeds of each seed's pooled value) with 95 % bootstrap
   intervals that resample patients (2000 draws).
4. **Baselines** on the same folds: the majority class, and a logistic
   regression on simple intensity features (`baselines.py`).

Writes `target/train/cv-report.json`, `cv-report.md`, `cv-confusion.png`
and `cv-oof.json`; `--ship` copies the report and the plot to `models/`.
"""
import argparse
import json
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import aggregation  # noqa: E402
import baselines  # noqa: E402
import cv_stats  # noqa: E402
import train as T  # noqa: E402
from report import markdown  # noqa: E402
from train import RECIPE_V2, RECIPES  # noqa: E402

# v3's candidates, in the order they are compared (each against the recipe kept so far,
# starting from v2); written down with the rule below before any v3 run.
V3_ORDER = ["v3-mean", "v3-clip", "v3-clip-tuned", "v3-clip-flip", "v3-clip-flip-tuned",
            # added after v3 shipped (2026-12-02 01:56 UTC, written into the card before computing):
            # 3-model ensembles, measured from the same fits (each clip's three out-of-fold outputs)
            "v3-ens3-mean", "v3-ens3-clip-flip"]
# Recipes 3 (self-supervised pretraining) and 4 (input side 160, wider phantom brightness), each
# written into the card before its runs: v3's candidates in v3's order, continuing the order.
V3SSL_ORDER = [name.replace("v3-", "v3ssl-", 1) for name in V3_ORDER]
V3S160_ORDER = [name.replace("v3-", "v3s160-", 1) for name in V3_ORDER]
# Recipe 4b (2.5D input from the pretrained encoder), written into the card before its runs.
V3SSL25D_ORDER = [name.replace("v3-", "v3ssl25d-", 1) for name in V3_ORDER]
ORDER = V3_ORDER + V3SSL_ORDER + V3S160_ORDER + V3SSL25D_ORDER

ROOT = Path(__file__).resolve().parents[2]
LOCKBOX_SEED = 20261201
SELECTION_RULE = (
    "Fixed before any recipe run. Candidates are compared on these folds (3 seeds x 5 folds, "
    "never the lockbox) by BLUES pooled macro-F1 and QWK. A candidate replaces the current recipe "
    "only if (1) its macro-F1 exceeds the current recipe's by more than the larger of the two "
    "recipes' 95 % interval half-widths for macro-F1, and (2) its QWK is not lower than the current "
    "recipe's by more than the larger QWK half-width. Otherwise the current recipe stays. A recipe "
    "that does not beat the features baseline by more than the interval half-width on macro-F1 or "
    "QWK is reported as not learning the task."
)


def make_lockbox_file(clips):
    if cv_stats.LOCKBOX.exists():
        sys.exit(f"{cv_stats.LOCKBOX} exists: the lockbox is drawn once; delete it only to start a new protocol")
    blues = [c for c in clips if c["dataset"] == "blues"]
    chosen = cv_stats.make_lockbox(blues, 0.2, LOCKBOX_SEED)
    worst = cv_stats.worst_scores(blues)
    cv_stats.LOCKBOX.write_text(json.dumps({
        "rule": "about 20 % of the BLUES development patients, per worst-score stratum round(0.2 n), "
                f"drawn with numpy default_rng({LOCKBOX_SEED}); made once, before any run of the protocol",
        "dataset": "blues", "seed": LOCKBOX_SEED,
        "patients": [g.split(":", 1)[1] for g in chosen],
        "worst_scores": {g.split(":", 1)[1]: worst[g] for g in chosen},
    }, indent=1) + "\n")
    print(f"wrote {cv_stats.LOCKBOX}: {len(chosen)} of {len(worst)} patients")


def row(c, fold, seed, pred, probs, scores, bline_area=None):
    r = {"name": c["name"], "dataset": c["dataset"], "group": c["group"], "zone": c.get("zone"), "fold": fold,
         "seed": seed, "truth": c["score"], "pred": int(pred), "probs": [float(p) for p in probs],
         "scores": scores, "findings": c["findings"]}
    if bline_area is not None:
        r["bline_area"] = bline_area
    return r


def run_network(train_clips, test_clips, phantom, recipe, seed, fold, ckpt, desc):
    """Trains the recipe on train_clips (+ phantom), predicts test_clips; resumes from ckpt.

    v2 saves clip rows; v3 saves every head's raw per-frame outputs of the held-out clips
    (`aggregation.py` turns them into rows), their frame embeddings (`.npz`) and the fitted
    weights (`.pt`), so that clip heads can later be refitted without retraining."""
    if ckpt.exists():
        return json.loads(ckpt.read_text())
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.time()
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    model, _ = T.train_model(train_clips + phantom, recipe, device, desc, seed)
    if getattr(recipe, "v3_heads", False):
        out = {"seconds": 0.0, "clips": [], "cutpoints": None}
        embeddings = {}
        for c in test_clips:
            raw = T.predict_clip_v3(model, T.model_input(c), device)
            out["cutpoints"] = raw.pop("cutpoints").tolist()
            for view in ("plain", "flip"):
                embeddings[f"{view}/{c['dataset']}/{c['name']}"] = raw[view].pop("embeddings")
                raw[view] = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in raw[view].items()}
            out["clips"].append(raw | {"name": c["name"], "dataset": c["dataset"], "group": c["group"],
                                       "zone": c.get("zone"), "fold": fold, "truth": c["score"],
                                       "findings": c["findings"]})
        np.savez_compressed(ckpt.with_suffix(".npz"), **embeddings)
        torch.save(model.state_dict(), ckpt.with_suffix(".pt"))
    else:
        rows = []
        for c in test_clips:
            probs, areas = T.predict_clip(model, c["frames"], device)
            scores = {f: areas[cls] for f, cls in cv_stats.FINDING_SCORES.items()}
            rows.append(row(c, fold, seed, int(np.argmax(probs)), probs, scores, areas["b_line"]))
        out = {"rows": rows}
    out["seconds"] = time.time() - t0
    ckpt.write_text(json.dumps(out))
    print(f"{desc}: {out['seconds']:.0f} s", flush=True)
    return out


def fits(args, dev, box, runs):
    """Every network fit of the protocol, as (seed, fold, training clips, held-out clips,
    checkpoint, label): the repeated CV's runs, then the lockbox fit (seed None, fold -1)."""
    for seed in args.seeds:
        fold_of = cv_stats.make_folds(dev, args.folds, seed)
        for k in range(args.folds):
            train = [c for c in dev if fold_of[c["group"]] != k]
            test = [c for c in dev if fold_of[c["group"]] == k]
            assert not {c["group"] for c in train} & {c["group"] for c in test}, "patient leak"
            yield (seed, k, train, test, runs / f"{args.recipe}-e{args.epochs}-s{seed}-f{k}.json",
                   f"seed {seed} fold {k + 1}/{args.folds}")
    if args.cv_only:
        return
    # The lockbox: one fit on all development data, one look.
    yield None, -1, dev, box, runs / f"{args.recipe}-e{args.epochs}-lockbox.json", "lockbox fit"


def fit_seed(seed, fold):
    """The training seed of a CV run, or the final fit's for the lockbox."""
    return T.FINAL_FIT_SEED if seed is None else seed * 100 + fold


_WORKER = {}


def _start_worker(cache, recipe, threads):
    import torch

    torch.set_num_threads(threads)
    clips = T.load_clips(cache, recipe.masks)
    _WORKER.update(clips={(c["dataset"], c["name"]): c for c in clips}, recipe=recipe,
                   phantom=T.load_phantom(cache, "phantom", getattr(recipe, "history_step", 0)))


def _run_task(task):
    train, test, seed, fold, ckpt, desc = task
    clips = _WORKER["clips"]
    return run_network([clips[k] for k in train], [clips[k] for k in test], _WORKER["phantom"],
                       _WORKER["recipe"], seed, fold, ckpt, desc)["seconds"]


def run_in_parallel(args, dev, box, runs):
    """Runs the pending network fits (CV and lockbox) `--jobs` at a time, each in its own
    process (on a GPU they share it; on CPUs they split the cores). Results land in the
    same checkpoints the sequential loop reads."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    key = lambda clips: [(c["dataset"], c["name"]) for c in clips]  # noqa: E731
    pending = [(key(train), key(test), fit_seed(seed, k), k, ckpt, desc)
               for seed, k, train, test, ckpt, desc in fits(args, dev, box, runs) if not ckpt.exists()]
    if not pending:
        return
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    recipe = types.SimpleNamespace(**(RECIPES[args.recipe] | {"epochs": args.epochs}))
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(args.cache, recipe, threads)) as pool:
        for seconds in pool.map(_run_task, pending):
            print(f"a run finished in {seconds:.0f} s", flush=True)


def network_rows(recipe, fits_by_seed, tune_on=None):
    """{candidate name: {seed: rows}} of the network fits: v2's saved rows, or each variant of a
    v3 recipe (named `<recipe>-<variant>`). For the lockbox (`tune_on` = the CV fits), tuned
    cut-points come from all CV predictions."""
    if recipe == "v2":
        return {"v2": {s: [r for f in fs for r in f["rows"]] for s, fs in fits_by_seed.items()}}
    rows = {f"{recipe}-{v}": aggregation.variant_rows(fits_by_seed, v, tune_on) for v in aggregation.VARIANTS}
    if tune_on is None and len(fits_by_seed) > 1:
        rows |= {f"{recipe}-ens{len(fits_by_seed)}-{v}": aggregation.ensemble_rows(fits_by_seed, v)
                 for v in ("mean", "clip-flip")}
    return rows


def saved_fits(args, dev, runs, recipe):
    """{seed: [fit output]} of another recipe's CV fits on these folds (`--compare`), from its
    checkpoints; they must all exist."""
    out = {}
    for seed in args.seeds:
        for k in range(args.folds):
            ckpt = runs / f"{recipe}-e{args.epochs}-s{seed}-f{k}.json"
            if not ckpt.exists():
                sys.exit(f"{ckpt} is missing: run `protocol.py --recipe {recipe} --cv-only` first")
            out.setdefault(seed, []).append(json.loads(ckpt.read_text()))
    return out


def run_baselines(train_clips, test_clips, fold, seed):
    preds = baselines.fit_predict(train_clips, test_clips)
    return {name: [row(c, fold, seed, p, probs, scores) for c, (p, probs, scores) in zip(test_clips, out)]
            for name, out in preds.items()}


def label_table(clips):
    """Counts of yes / no / unknown per finding and dataset."""
    table = {}
    for dataset in ["blues", "pocus"]:
        sel = [c for c in clips if c["dataset"] == dataset]
        for f in ["a_lines", "b_lines", "consolidation", "pleura_abnormal", "white_lung", "effusion",
                  "air_bronchogram"]:
            vals = [c["findings"].get(f) for c in sel]
            table.setdefault(f, {})[dataset] = {"yes": sum(v is True for v in vals),
                                                "no": sum(v is False for v in vals),
                                                "unknown": sum(v is None for v in vals)}
    return table


def summarize(rows_by_seed, draws):
    """{dataset: stats} and {dataset: bootstrap draws}."""
    stats, samples = {}, {}
    for dataset in ["blues", "pocus"]:
        sel = {s: [r for r in rows if r["dataset"] == dataset] for s, rows in rows_by_seed.items()}
        if not any(sel.values()):
            continue
        stats[dataset], samples[dataset] = cv_stats.pooled_with_intervals(sel, draws=draws)
        stats[dataset]["clips"] = len(next(iter(sel.values())))
        stats[dataset]["groups"] = len({r["group"] for r in next(iter(sel.values()))})
        stats[dataset]["confusion_seed1"] = cv_stats.confusion(next(iter(sel.values())))
    return stats, samples


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "target" / "train-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "train")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=RECIPE_V2["epochs"], help="the v2 recipe's 30; less only to test")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="v3",
                    help="v3 (finding and clip heads, every aggregation variant), v3ssl (v3 from pretrain.py's "
                         "encoder) or v2 (to reproduce it)")
    ap.add_argument("--compare", choices=sorted(RECIPES), nargs="+", default=[],
                    help="also report these recipes' saved CV fits of the same folds; each later recipe's "
                         "candidates are paired with the same variant of their base (PAIRED_BASE)")
    ap.add_argument("--cv-only", action="store_true",
                    help="the repeated CV only: no lockbox fit and no look at the lockbox")
    ap.add_argument("--jobs", type=int, default=1,
                    help="network fits at a time, each in its own process (e.g. 6 on one GPU)")
    ap.add_argument("--make-cache", action="store_true", help="export the frames (pleura dataset export) and stop")
    ap.add_argument("--make-lockbox", action="store_true", help="draw the lockbox (once, before any run)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the report from saved runs")
    ap.add_argument("--ship", action="store_true", help="copy the report to models/cv-report.json")
    args = ap.parse_args()
    t_start = time.time()
    recipe = types.SimpleNamespace(**(RECIPES[args.recipe] | {"epochs": args.epochs}))
    size = getattr(recipe, "size", T.SIZE)
    history_step = getattr(recipe, "history_step", 0)
    args.cache = T.cache_dir(args.cache, size, history_step)
    T.export_cache(args.cache, args.data, RECIPE_V2["phantom_clips"], size, history_step)
    if args.make_cache:
        return
    clips = T.load_clips(args.cache, recipe.masks)
    if args.make_lockbox:
        make_lockbox_file(clips)
        return
    lockbox, box_meta = cv_stats.load_lockbox()
    phantom = T.load_phantom(args.cache, "phantom", history_step)
    for c in clips:
        c["features"] = baselines.clip_features(c["frames"])
    dev = [c for c in clips if c["group"] not in lockbox]
    box = [c for c in clips if c["group"] in lockbox]
    assert len({c["group"] for c in box}) == len(lockbox), "a lockbox patient is missing from the data"
    runs = args.out / "protocol"
    rows = {"majority": {}, "features": {}}
    net_fits, seconds = {}, []
    if args.jobs > 1 and not args.report_only:
        run_in_parallel(args, dev, box, runs)
    box_rows, lockbox_seconds = {}, None
    for seed, k, train, test, ckpt, desc in fits(args, dev, box, runs):
        if args.report_only and not ckpt.exists():
            sys.exit(f"{ckpt} is missing: run the protocol first")
        net = run_network(train, test, phantom, recipe, fit_seed(seed, k), k, ckpt, desc)
        baseline_rows = run_baselines(train, test, k, seed or 0)
        if seed is None:
            lockbox_seconds = net["seconds"]
            box_rows = network_rows(args.recipe, {0: [net]}, tune_on=net_fits) \
                | {n: {0: r} for n, r in baseline_rows.items()}
            continue
        seconds.append(net["seconds"])
        net_fits.setdefault(seed, []).append(net)
        for name, r in baseline_rows.items():
            rows[name].setdefault(seed, []).extend(r)
    rows = network_rows(args.recipe, net_fits) | rows
    for other in reversed(args.compare):
        rows = network_rows(other, saved_fits(args, dev, runs, other)) | rows

    wall = time.time() - t_start
    if args.report_only:  # the wall time is that of the run that made the checkpoints
        previous = args.out / "cv-report.json"
        wall = json.loads(previous.read_text())["timing"].get("wall_seconds") if previous.exists() else None
    timing = {"cv_fit_seconds": seconds, "lockbox_fit_seconds": lockbox_seconds, "wall_seconds": wall}
    report = build_report(args, rows, box_rows, box_meta, clips, timing)
    kept = (report["selection"] or {}).get("kept", "")
    if kept.endswith("tuned"):
        # The cut-points a tuned candidate ships with: tuned on every BLUES out-of-fold value.
        cv_clips = [c for fs in net_fits.values() for f in fs for c in f["clips"] if c["dataset"] == "blues"]
        flip = "flip" in kept
        cuts = aggregation.tune_cutpoints([aggregation.clip_value(c, flip) for c in cv_clips],
                                          [c["truth"] for c in cv_clips])
        report["selection"]["ship_cutpoints"] = [float(x) for x in cuts]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cv-report.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "cv-report.md").write_text(markdown(report))
    # The plot shows the candidate that ships: the rule's, or the amendment's when it chose one.
    shown = (report["selection"] or {}).get("ships_for_findings") or (report["selection"] or {}).get("kept")
    plot_confusions(rows, box_rows, args.out / "cv-confusion.png", shown if shown in rows else next(iter(rows)))
    (args.out / "cv-oof.json").write_text(json.dumps({n: {str(s): r for s, r in v.items()} for n, v in rows.items()}))
    print(markdown(report))
    if args.ship:
        for name in ["cv-report.json", "cv-confusion.png"]:
            shutil.copy(args.out / name, ROOT / "models" / name)
            print(f"copied {name} to {ROOT / 'models'}")


def plot_confusions(rows, box_rows, path, shown):
    """BLUES confusion matrices: the `shown` candidate and the feature baseline out-of-fold
    (seeds summed), and the candidate on the lockbox when it has been opened."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"{shown}, out-of-fold (seeds summed)", rows[shown]),
              ("features baseline, out-of-fold (seeds summed)", rows["features"])]
    if shown in box_rows:
        panels.append((f"{shown}, lockbox (fitted once without it)", box_rows[shown]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.7 * len(panels), 4.4))
    for ax, (title, by_seed) in zip(axes, panels):
        m = np.sum([cv_stats.confusion([r for r in rs if r["dataset"] == "blues"]) for rs in by_seed.values()], 0)
        ax.imshow(m, cmap="Blues")
        for i in range(4):
            for j in range(4):
                ax.text(j, i, m[i, j], ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
        ax.set(title=f"BLUES: {title}", xlabel="predicted score", ylabel="expert score", xticks=range(4),
               yticks=range(4))
        ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


V3_COMMON = ("the v3 recipe (train.py RECIPE_V3: v2's network, data and losses plus the finding heads and the "
             "attention clip head with a cumulative-link ordinal loss, trained end to end on whole-clip batches); "
             "finding scores = log-sum-exp pool of the frames' finding logits; B-line tint gated by the frames' "
             "B-line head")
DESCRIPTIONS = {
    "v2": "LusNet v2's recipe (scripts/train/train.py defaults: SORD loss, class weights, 30 epochs x 4 frames "
          "per clip, augmentations, phantom + weak masks); clip score = mean frame probability; finding scores = "
          "mean segmented area of the b_line / consolidation class",
    "v3-mean": f"{V3_COMMON}; clip score = mean frame probability (v2's rule)",
    "v3-clip": f"{V3_COMMON}; clip score = the clip head over all frames, cut-points as trained",
    "v3-clip-tuned": f"{V3_COMMON}; clip score = the clip head, cut-points tuned (macro-F1 + QWK) on the other "
                     "folds' out-of-fold values of the same seed and dataset",
    "v3-clip-flip": f"{V3_COMMON}; the clip head on outputs averaged over each frame and its mirror image",
    "v3-clip-flip-tuned": f"{V3_COMMON}; mirror-averaged, with nested tuned cut-points",
    "v3-ens3-mean": f"{V3_COMMON}; a 3-model ensemble: each clip's mean frame probabilities averaged over the "
                    "3 seeds' models that held it out",
    "v3-ens3-clip-flip": f"{V3_COMMON}; a 3-model ensemble of the mirror-averaged clip head (values and "
                         "cut-points averaged over the 3 seeds' models that held the clip out)",
    "majority": "the most frequent score of the training clips of the same dataset; constant finding scores",
    "features": "L2 logistic regression (balanced, C by grouped CV inside the training part) on 25 per-clip "
                "intensity features: depth-band means and deviations, bright vertical streaks, horizontal band "
                "periodicity, global statistics (scripts/train/baselines.py)",
}
# The later recipes' candidates: v3's description of the same variant, and what the recipe changes.
RECIPE_NOTES = {
    "v3ssl": "the v3 recipe started from pretrain.py's encoder (VICReg on nearby frames of every POCUS file and "
             "the phantom clips; no BLUES frame, so the BLUES numbers stay patient-disjoint, while the POCUS ones "
             "are transductive)",
    "v3ssl25d": "recipe 4b: a 2.5D input, the frames t - 4, t - 2 and t (decoded frames) as three channels, from "
                "pretrain.py's encoder (its stem on frame t, the earlier channels starting at zero)",
    "v3s160": "recipe 4: a 160-pixel input (the sector resized to 160x160 rather than 128x128) and a wider gain "
              "and gamma range for the phantom batches (gain 0.7-2.0, gamma 0.5-1.2)",
}
DESCRIPTIONS |= {name.replace("v3-", f"{recipe}-", 1): DESCRIPTIONS[name].replace(V3_COMMON, f"{V3_COMMON}; {note}")
                 for recipe, note in RECIPE_NOTES.items() for name in V3_ORDER}
# The recipe each later one changes, as its plan in the card names it: the paired differences
# reference.
PAIRED_BASE = {"v3ssl": "v3", "v3s160": "v3", "v3ssl25d": "v3ssl"}
PUBLISHED = ROOT / "models" / "cv-report.json"


def half_width(m):
    return (m["ci_high"] - m["ci_low"]) / 2


def rule_says(current, candidate):
    """SELECTION_RULE on two pooled BLUES entries: (replace?, why)."""
    f_cur, f_new = current["macro_f1"], candidate["macro_f1"]
    q_cur, q_new = current["qwk"], candidate["qwk"]
    f_margin = max(half_width(f_cur), half_width(f_new))
    q_margin = max(half_width(q_cur), half_width(q_new))
    f_gain, q_gain = f_new["mean"] - f_cur["mean"], q_new["mean"] - q_cur["mean"]
    ok = f_gain > f_margin and q_gain >= -q_margin
    why = (f"macro-F1 {f_gain:+.3f} (needs > {f_margin:.3f}), QWK {q_gain:+.3f} (must be >= {-q_margin:.3f})")
    return ok, why


def select(entries, reference):
    """Applies the rule along ORDER from the reference (v2); returns (kept name, decisions)."""
    current, decisions = reference, []
    for name in ORDER:
        cand = next((e for e in entries if e["name"] == name), None)
        if cand is None:
            continue
        ok, why = rule_says(current["pooled"], cand["pooled"])
        decisions.append({"candidate": name, "against": current["name"], "replaces": ok, "why": why})
        if ok:
            current = cand
    return current["name"], decisions


# The card's amendment for the finding heads (2026-12-02 04:58 UTC, before recipe 4's results):
# it applies to the candidates of recipe 4 on, never to those measured before it.
FINDINGS_AMENDMENT_ORDER = V3S160_ORDER + V3SSL25D_ORDER
SHIPPED = "v3-mean"


def findings_amendment(summaries, v2):
    """The amendment on each candidate it covers that has been measured: (a) macro-F1 and QWK
    within the rule's margins of v2, (b) BLUES B-line AUC minus the shipped candidate's with a
    paired 95 % interval above zero, (c) a lower gated median tint on B-line-negative clips.
    Returns (the first candidate meeting all three or None, [per-candidate decisions])."""
    if SHIPPED not in summaries:
        return None, []
    shipped, shipped_draws = summaries[SHIPPED][0]["blues"], summaries[SHIPPED][1]["blues"]
    decisions, first = [], None
    for name in FINDINGS_AMENDMENT_ORDER:
        if name not in summaries:
            continue
        stats, draws = summaries[name][0]["blues"], summaries[name][1]["blues"]
        f_gap = stats["macro_f1"]["mean"] - v2["macro_f1"]["mean"]
        q_gap = stats["qwk"]["mean"] - v2["qwk"]["mean"]
        f_margin = max(half_width(v2["macro_f1"]), half_width(stats["macro_f1"]))
        q_margin = max(half_width(v2["qwk"]), half_width(stats["qwk"]))
        auc = cv_stats.difference(draws, shipped_draws, stats, shipped).get("auc_b_lines")
        tint, tint_shipped = stats["bline_negative_median"]["mean"], shipped["bline_negative_median"]["mean"]
        checks = {"a": f_gap >= -f_margin and q_gap >= -q_margin,
                  "b": bool(auc) and auc["ci_low"] > 0,
                  "c": tint is not None and tint_shipped is not None and tint < tint_shipped}
        why = (f"(a) macro-F1 {f_gap:+.3f} and QWK {q_gap:+.3f} against v2 (margins {f_margin:.3f}, {q_margin:.3f}); "
               f"(b) B-line AUC minus {SHIPPED} " + (f"{auc['mean']:+.3f} [{auc['ci_low']:+.3f}, {auc['ci_high']:+.3f}]"
                                                    if auc else "missing")
               + "; (c) gated tint median " + (f"{tint:.3f} against {tint_shipped:.3f}"
                                                 if tint is not None and tint_shipped is not None else "missing"))
        decisions.append({"candidate": name, "meets": checks, "why": why})
        if first is None and all(checks.values()):
            first = name
    return first, decisions


def build_report(args, rows, box_rows, box_meta, clips, timing):
    summaries = {n: summarize(r, args.draws) for n, r in rows.items()}
    box_summaries = {n: summarize(r, args.draws) for n, r in box_rows.items()}

    def entry(name):
        stats, samples = summaries[name]
        e = {"name": name, "description": DESCRIPTIONS[name], "pooled": stats["blues"], "pocus": stats.get("pocus")}
        if name != "features":
            fs, fsamp = summaries["features"]
            e["minus_features_baseline"] = cv_stats.difference(samples["blues"], fsamp["blues"],
                                                               stats["blues"], fs["blues"])
        return e

    networks = [n for n in rows if n not in ("majority", "features")]
    recipes = [entry(n) for n in networks]
    selection = None
    published = json.loads(PUBLISHED.read_text()) if PUBLISHED.exists() else None
    if args.recipe.startswith("v3"):
        # v2's pooled numbers as published (issue 15's run of the same folds, frames exported before
        # issue 16's frame checks dropped black lead-in frames; v2 kept no per-clip rows to re-pair).
        # (Once v3's report is published, it carries v2's numbers as its reference.)
        v2 = next((e["pooled"] for e in (published or {}).get("recipes", []) if e["name"] == "v2"),
                  ((published or {}).get("selection") or {}).get("reference_pooled"))
        if v2 is not None:
            kept, decisions = select(recipes, {"name": "v2", "pooled": v2})
            selection = {"reference": "v2 as published in models/cv-report.json (issue 15)",
                         "reference_pooled": v2, "order": ORDER, "decisions": decisions, "kept": kept}
            ships, amended = findings_amendment(summaries, v2)
            if amended:
                selection |= {"findings_amendment": amended, "ships_for_findings": ships}
    # Each later recipe against the same variant of the base its plan names: reported, not part
    # of the rule.
    paired = []
    for name in networks:
        recipe, variant = name.split("-", 1)
        base = f"{PAIRED_BASE[recipe]}-{variant}" if recipe in PAIRED_BASE else None
        if base in summaries:
            (a, sa), (b, sb) = summaries[name], summaries[base]
            paired.append({"candidate": name, "minus": base,
                           "blues": cv_stats.difference(sa["blues"], sb["blues"], a["blues"], b["blues"])})
    dev_groups = {r["group"] for r in rows[networks[0]][args.seeds[0]] if r["dataset"] == "blues"}
    report = {
        "protocol": {
            "cv": f"{len(args.seeds)} seeds x {args.folds} folds, patient-grouped (BLUES patients, POCUS name stems), "
                  "stratified by each group's worst score; lockbox patients excluded",
            "seeds": args.seeds, "folds": args.folds, "epochs": args.epochs, "recipe": args.recipe,
            "pooling": "each metric on all out-of-fold clips of a seed, then the mean over seeds",
            "intervals": f"95 % percentile bootstrap over patients (BLUES) or name stems (POCUS), {args.draws} draws, "
                         "the same draw applied to every seed",
            "blues_patients": len(dev_groups),
            "clip_score": "per candidate (see its description), over up to 48 exported frames",
            "exam_total": "per patient, one score per zone (the worst of its recordings), summed",
        },
        "selection_rule": SELECTION_RULE,
        "selection": selection,
        "recipes": recipes,
        "paired": paired,
        "baselines": [entry("majority"), entry("features")],
        "lockbox": None,
        "labels": label_table(clips),
        "timing": timing,
    }
    if box_rows:
        report["lockbox"] = {
            "patients": box_meta["patients"],
            "rule": box_meta["rule"],
            "fit": "the recipe fitted once on all development data outside the lockbox (the shipped model's fit), "
                   "checked once here after the choice; intervals resample the lockbox patients",
            "results": [{"name": n, "blues": box_summaries[n][0]["blues"]} for n in box_rows],
        }
        # The lockbox was opened once for each file that shipped; the earlier looks stay on record.
        before = (published or {}).get("lockbox")
        if before and {r["name"] for r in before["results"]} != set(box_rows):
            report["lockbox"]["earlier"] = [{k: v for k, v in before.items() if k not in ("earlier", "carried")}] \
                + before.get("earlier", [])
    elif published and published.get("lockbox"):
        # A CV-only run keeps the lockbox of the model that ships (opened once, for it).
        report["lockbox"] = published["lockbox"] | {"carried": "from the published report: the shipped model's "
                                                               "single look; this run did not open it"}
    return report


if __name__ == "__main__":
    main()
