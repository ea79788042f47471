#!/usr/bin/env python3
"""Print the cross-validation results of a training run as Markdown tables.

    python3 scripts/train/report.py target/train/cv.json

Needs only the standard library, so the model card can be regenerated
without PyTorch.
"""
import json
import sys

KEYS = [("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("weighted_f1", "weighted F1"),
        ("qwk", "QWK"), ("mae", "MAE"), ("bline_auc", "B-line AUC"), ("exam_mae", "exam-total MAE")]


def main(path):
    cv = json.load(open(path))
    datasets = list(cv["pooled"])
    print("| metric | " + " | ".join(f"{d}: folds mean ± sd | {d}: pooled" for d in datasets) + " |")
    print("|---|" + "---|---|" * len(datasets))
    for key, label in KEYS:
        cells = []
        for d in datasets:
            fold = cv["per_fold"].get(d, {}).get(key)
            pooled = cv["pooled"][d].get(key)
            cells.append(f"{fold['mean']:.3f} ± {fold['std']:.3f}" if fold else "–")
            cells.append(f"{pooled:.3f}" if pooled is not None else "–")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    for d in datasets:
        m = cv["pooled"][d]["confusion"]
        print(f"{d} pooled confusion ({cv['pooled'][d]['clips']} clips; rows = expert 0–3, columns = Pleura 0–3):")
        print()
        print("| expert \\ Pleura | 0 | 1 | 2 | 3 |")
        print("|---|---|---|---|---|")
        for i, row in enumerate(m):
            print(f"| {i} | " + " | ".join(str(v) for v in row) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/train/cv.json")
