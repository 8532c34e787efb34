"""End of `make run`: print Model A's evaluation and classify one real held-out 2025 posting offline.

The sample prediction goes through the device path (`careeredge predict` on the INT8 bundle), exactly
what the Raspberry Pi runs.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "artifacts" / "model_a_v1" / "metrics.json"
BUNDLE = ROOT / "artifacts" / "bundles" / "model_a_v1"
TEST_SPLIT = ROOT / "data" / "processed" / "splits" / "test.csv"


def main() -> int:
    if not METRICS.is_file():
        print(f"error: {METRICS} missing; run `make run` (dvc repro) first", file=sys.stderr)
        return 2
    metrics = json.loads(METRICS.read_text())
    test, base = metrics["test"], metrics["baseline_tfidf"]["test"]
    print("\n== Model A (2025 test split) ==")
    print(f"accuracy {test['accuracy']:.3f}  macro-F1 {test['macro_f1']:.3f}  ECE {test['ece']:.3f}  n={test['n']}")
    print(f"TF-IDF + LR baseline: accuracy {base['accuracy']:.3f}  macro-F1 {base['macro_f1']:.3f}")
    print(f"confusion matrix [[SWE->SWE, SWE->DS], [DS->SWE, DS->DS]]: {test['confusion_matrix']}")
    if "cv" in metrics:
        cv = metrics["cv"]
        print(
            f"{cv['folds']}-fold CV: {cv['accuracy_mean']:.3f} ± {cv['accuracy_std']:.3f} "
            f"(TF-IDF {cv['baseline_accuracy_mean']:.3f} ± {cv['baseline_accuracy_std']:.3f})"
        )
    print(f"report plot: {METRICS.parent / 'evaluation.png'}")
    if not BUNDLE.is_dir():
        return 0
    with TEST_SPLIT.open(encoding="utf-8", newline="") as handle:
        sample = next(csv.DictReader(handle))
    print(f"\n== Sample offline prediction (INT8 bundle) ==\ntitle (not shown to the model): {sample['title']}")
    cli = Path(sys.executable).with_name("careeredge")
    return subprocess.call([str(cli), "predict", "--model", str(BUNDLE), sample["text"]])


if __name__ == "__main__":
    sys.exit(main())
