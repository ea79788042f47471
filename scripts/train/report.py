#!/usr/bin/env python3
"""Print a cross-validation report (`protocol.py`'s JSON) as Markdown.

    python3 scripts/train/report.py models/cv-report.json

Needs only the standard library, so the model card's tables can be
regenerated without PyTorch.
"""
import json
import sys


METRICS = [("macro_f1", "macro-F1"), ("qwk", "QWK"), ("accuracy", "accuracy"), ("mae", "MAE"),
           ("exam_mae", "exam-total MAE"), ("auc_b_lines", "B-line AUC"),
           ("auc_consolidation", "consolidation AUC"),
           ("bline_negative_median", "B-line tint on B-line-negative clips, median"),
           ("bline_negative_p90", "B-line tint on B-line-negative clips, p90"),
           ("bline_negative_median_ungated", "the same median without the B-line head's gate")]



def fmt(m, digits=3):
    if not m or m.get("mean") is None:
        return "–"
    lo, hi = m["ci_low"], m["ci_high"]
    ci = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None else ""
    return f"{m['mean']:.{digits}f}{ci}"


def markdown(report):
    out = ["# Cross-validation report", "",
           f"Protocol: {report['protocol']['cv']}; {report['protocol']['blues_patients']} BLUES patients. "
           f"Pooling: {report['protocol']['pooling']}. Intervals: {report['protocol']['intervals']}.", ""]
    entries = report["recipes"] + report["baselines"]
    out += ["## BLUES, pooled out-of-fold (mean [95 % interval])", "",
            "| metric | " + " | ".join(e["name"] for e in entries) + " |",
            "|---|" + "---|" * len(entries)]
    for key, label in METRICS:
        out.append(f"| {label} | " + " | ".join(fmt(e["pooled"].get(key)) for e in entries) + " |")
    out += ["", "## Against the features baseline (paired bootstrap, BLUES)", "",
            "| metric | " + " | ".join(f"{e['name']} − features" for e in entries if "minus_features_baseline" in e)
            + " |", "|---|" + "---|" * sum("minus_features_baseline" in e for e in entries)]
    for key, label in METRICS[:7]:
        out.append(f"| {label} | " + " | ".join(fmt(e["minus_features_baseline"].get(key)) for e in entries
                                                if "minus_features_baseline" in e) + " |")
    out += ["", "## POCUS, pooled out-of-fold", "",
            "| metric | " + " | ".join(e["name"] for e in entries) + " |", "|---|" + "---|" * len(entries)]
    for key, label in METRICS:
        if key == "exam_mae":
            continue
        out.append(f"| {label} | " + " | ".join(fmt((e["pocus"] or {}).get(key)) for e in entries) + " |")
    paired = report.get("paired") or []
    if paired:
        out += ["", "## Each candidate minus the same variant of the compared recipe (paired bootstrap, BLUES)", "",
                "| metric | " + " | ".join(f"{p['candidate']} − {p['minus']}" for p in paired) + " |",
                "|---|" + "---|" * len(paired)]
        for key, label in METRICS:
            out.append(f"| {label} | " + " | ".join(fmt(p["blues"].get(key)) for p in paired) + " |")
    sel = report.get("selection")
    if sel:
        out += ["", "## Selection, in the order written before the runs", "",
                f"Reference: {sel['reference']}.", "", "| candidate | against | replaces | why |", "|---|---|---|---|"]
        out += [f"| {d['candidate']} | {d['against']} | {'yes' if d['replaces'] else 'no'} | {d['why']} |"
                for d in sel["decisions"]]
        out += ["", f"Kept: **{sel['kept']}**."]
        if sel.get("findings_amendment"):
            out += ["", "The amendment for the finding heads (written before these candidates' runs):", "",
                    "| candidate | (a) score within margins | (b) B-line AUC up | (c) tint down | numbers |",
                    "|---|---|---|---|---|"]
            yes = lambda b: "yes" if b else "no"  # noqa: E731
            out += [f"| {d['candidate']} | {yes(d['meets']['a'])} | {yes(d['meets']['b'])} | {yes(d['meets']['c'])} "
                    f"| {d['why']} |" for d in sel["findings_amendment"]]
            out += ["", f"Ships for its findings: **{sel['ships_for_findings'] or 'none'}**."]
    box = report["lockbox"]
    res = box["results"] if box else []
    if box:
        out += ["", f"## Lockbox ({len(box['patients'])} BLUES patients, {res[0]['blues']['clips']} clips)", "",
                "| metric | " + " | ".join(r["name"] for r in res) + " |", "|---|" + "---|" * len(res)]
        for key, label in METRICS:
            out.append(f"| {label} | " + " | ".join(fmt(r["blues"].get(key)) for r in res) + " |")
        if box.get("carried"):
            out += ["", f"The lockbox results above are carried {box['carried']}."]
        for earlier in box.get("earlier", []):
            shipped = earlier["results"][0]
            out += ["", f"Opened earlier, once, for `{shipped['name']}` (the file that shipped then): "
                    + ", ".join(f"{label} {fmt(shipped['blues'].get(key))}" for key, label in METRICS[:2]) + "."]
    else:
        out += ["", "## Lockbox", "", "Not opened in this run (`--cv-only`)."]
    out += ["", "## Finding labels (yes / no / unknown)", "", "| finding | BLUES | POCUS (rated clips) |",
            "|---|---|---|"]
    for f, d in report["labels"].items():
        cells = [f"{d[x]['yes']} / {d[x]['no']} / {d[x]['unknown']}" for x in ["blues", "pocus"]]
        out.append(f"| {f} | " + " | ".join(cells) + " |")
    out += ["", "## Selection rule", "", report["selection_rule"], ""]
    t = report["timing"]
    fits = t["cv_fit_seconds"] + ([t["lockbox_fit_seconds"]] if t["lockbox_fit_seconds"] else [])
    wall = f"; wall time of the whole run {t['wall_seconds'] / 60:.1f} min" if t.get("wall_seconds") else ""
    out += [f"Network fits: {len(fits)} ({len(t['cv_fit_seconds'])} CV, {len(fits) - len(t['cv_fit_seconds'])} lockbox), "
            f"{sum(fits) / 60:.1f} min of fitting and predicting{wall}.", ""]
    return "\n".join(out)



if __name__ == "__main__":
    print(markdown(json.load(open(sys.argv[1] if len(sys.argv) > 1 else "target/train/cv-report.json"))))
