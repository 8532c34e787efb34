"""`careeredge-cloud cv-a`: k-fold cross-validation of Model A's recipe and of the TF-IDF baseline.

The 2025 test split holds ~90 rows, so one split moves accuracy by a point per error. CV over all
labelled rows shows how much of a difference between models is split noise. For time on a 2-core
trainer the CV folds use the shorter `cv.max_length` / `cv.epochs` from params.yaml (reported in the
output): it measures the spread of the recipe, not the exact shipped model.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

from cloud.artifacts import write_json_atomic
from cloud.data.splits import read_split
from cloud.params import load_params
from cloud.training.baseline import fit_tfidf_baseline, tfidf_probabilities
from cloud.training.finetune import FineTuneConfig, TrainedClassifier, fine_tune
from shared.text import load_tokenizer


def cross_validate(texts: list[str], labels: list[int], config: FineTuneConfig, folds: int, seed: int) -> dict:
    from sklearn.model_selection import StratifiedKFold

    texts_arr, labels_arr = np.asarray(texts, dtype=object), np.asarray(labels)
    model_acc, base_acc, model_f1 = [], [], []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    folds_iter = tqdm(enumerate(splitter.split(texts_arr, labels_arr), start=1), total=folds, desc="cv-a folds")
    for _fold, (train_idx, test_idx) in folds_iter:
        train_t, train_y = texts_arr[train_idx].tolist(), labels_arr[train_idx].tolist()
        test_t, test_y = texts_arr[test_idx].tolist(), labels_arr[test_idx]
        # No validation split inside a fold: the fixed epoch count is the model (no peeking at test).
        result = fine_tune(train_t, train_y, [], [], config)
        classifier = TrainedClassifier(
            result.model,
            load_tokenizer(result.tokenizer_json, config.max_length),
            config.preprocessing,
            config.max_length,
        )
        predicted = classifier.predict_proba(test_t).argmax(axis=1)
        model_acc.append(float((predicted == test_y).mean()))
        model_f1.append(_macro_f1(test_y, predicted))
        baseline = fit_tfidf_baseline(train_t, train_y)
        base_acc.append(float((tfidf_probabilities(baseline, test_t).argmax(axis=1) == test_y).mean()))
    return {
        "folds": folds,
        "max_length": config.max_length,
        "epochs": config.epochs,
        "freeze_layers": config.freeze_layers,
        "accuracy_per_fold": [round(a, 4) for a in model_acc],
        "accuracy_mean": round(float(np.mean(model_acc)), 4),
        "accuracy_std": round(float(np.std(model_acc)), 4),
        "macro_f1_mean": round(float(np.mean(model_f1)), 4),
        "baseline_accuracy_per_fold": [round(a, 4) for a in base_acc],
        "baseline_accuracy_mean": round(float(np.mean(base_acc)), 4),
        "baseline_accuracy_std": round(float(np.std(base_acc)), 4),
    }


def _macro_f1(labels, predicted) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predicted, average="macro"))


@click.command("cv-a")
@click.option("--splits", type=click.Path(path_type=Path), default=Path("data/processed/splits"))
@click.option("--out", type=click.Path(path_type=Path), default=Path("artifacts/cv_a/cv.json"))
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"))
@click.option("--base", default=None)
@click.option("--threads", type=int, default=None)
def cv_command(splits: Path, out: Path, params_path: Path, base: str | None, threads: int | None) -> None:
    """k-fold CV of the Model A recipe and the TF-IDF baseline over all labelled 2025 rows."""
    params = load_params(params_path)
    cv = params["cv"]
    config = FineTuneConfig.from_params(
        params,
        base=base,
        epochs=cv["epochs"],
        max_length=cv["max_length"],
        freeze_layers=cv.get("freeze_layers"),
        threads=threads,
        progress=False,
    )
    texts, labels = [], []
    for split in ("train", "val", "test"):
        t, y = read_split(splits / f"{split}.csv")
        texts += t
        labels += y
    report = cross_validate(texts, labels, config, cv["folds"], params["split"]["seed"])
    write_json_atomic(out, report)
    click.echo(
        f"cv-a: accuracy {report['accuracy_mean']:.3f} ± {report['accuracy_std']:.3f}; TF-IDF "
        f"{report['baseline_accuracy_mean']:.3f} ± {report['baseline_accuracy_std']:.3f} -> {out}"
    )
