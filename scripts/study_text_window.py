#!/usr/bin/env python
"""Diagnostic: how much of a posting does the 2026 task need? TF-IDF + logistic regression cut at N characters.

    python scripts/study_text_window.py --json artifacts/study_b/text_window.json

A linear model is trained on the same rows as Model B's taxonomy arm (the 2025 train split + the 2026
pool rows the title taxonomy labelled, `data/pseudo_labels/taxonomy.csv`) and scored on the 2026
evaluation split and the 2025 test split, reading each posting's `skills_first` model input cut at
N characters (the encoder's 256-piece window is ~1,200 characters) or whole. It only asks whether text
beyond the window carries the label; it chooses nothing (results: docs/studies/2026-11-27-reading-windows.md).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cloud.cli_options import normalized_option, params_option, pseudo_labels_option, splits_option  # noqa: E402


@click.command()
@click.option("--json", "json_out", type=click.Path(path_type=Path), required=True)
@click.option("--cut", "cuts", type=int, multiple=True, help="Characters kept (0 = whole) [default: 1200 2500 0].")
@splits_option()
@pseudo_labels_option()
@normalized_option()
@params_option()
def main(json_out, cuts, splits, pseudo_dir, normalized, params_path) -> None:
    from cloud.data.splits import read_split
    from cloud.ingest.normalized import load_postings
    from cloud.params import load_params
    from cloud.training.baseline import fit_predict_window
    from cloud.training.pseudo_label import pseudo_label_settings
    from cloud.training.stream_split import split_stream
    from shared.text import model_input

    with (pseudo_dir / "taxonomy.csv").open(encoding="utf-8", newline="") as handle:
        pool = list(csv.DictReader(handle))
    train_texts, train_labels = read_split(splits / "train.csv")
    texts = train_texts + [r["text"] for r in pool]
    labels = np.array(train_labels + [int(r["label"]) for r in pool])
    stream = split_stream(load_postings(normalized), pseudo_label_settings(load_params(params_path))["eval_fraction"])
    test_texts, test_labels = read_split(splits / "test.csv")
    scored = {
        "eval_2026": ([p.description for p in stream.evaluation], np.array(stream.eval_labels)),
        "test_2025": (test_texts, np.array(test_labels)),
    }
    inputs = {name: [model_input(t, "skills_first") for t in split_texts] for name, (split_texts, _) in scored.items()}
    train_inputs = [model_input(t, "skills_first") for t in texts]
    figures = {"train_rows": len(texts), "runs": {}}
    for cut in cuts or (1200, 2500, 0):
        run = {
            name: round(float((fit_predict_window(train_inputs, labels, inputs[name], cut) == y).mean()), 4)
            for name, (_, y) in scored.items()
        }
        figures["runs"]["whole" if not cut else str(cut)] = run
        click.echo(f"cut {cut or 'whole':>5}: " + ", ".join(f"{k} {v:.3f}" for k, v in run.items()))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
