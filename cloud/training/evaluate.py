"""`careeredge-cloud evaluate`: Model A vs the TF-IDF baseline on the same test split.

Writes `<model_dir>/metrics.json` laid out as
{"test": {...}, "val": {...}, "baseline_tfidf": {"test": {...}}, "cv": {...}, "label_report": {...}}
plus a confusion-matrix / reliability plot. Other tools (export, README, drift) read this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from cloud.artifacts import write_json_atomic
from cloud.data.splits import read_split
from cloud.training.baseline import fit_tfidf_baseline, tfidf_probabilities
from cloud.training.metrics import classification_report
from cloud.training.model_io import load_classifier


def evaluate_model(
    model_dir: Path, splits: Path, label_report: Path | None = None, cv_report: Path | None = None
) -> dict:
    classifier = load_classifier(model_dir)
    train_texts, train_labels = read_split(splits / "train.csv")
    val_texts, val_labels = read_split(splits / "val.csv")
    test_texts, test_labels = read_split(splits / "test.csv")
    test_probs = classifier.predict_proba(test_texts, progress=True)
    baseline = fit_tfidf_baseline(train_texts, train_labels)
    metrics = {
        "test": classification_report(test_labels, test_probs),
        "val": classification_report(val_labels, classifier.predict_proba(val_texts)),
        "baseline_tfidf": {"test": classification_report(test_labels, tfidf_probabilities(baseline, test_texts))},
    }
    cv_path = cv_report if cv_report else model_dir / "cv.json"
    if cv_path.is_file():
        metrics["cv"] = json.loads(cv_path.read_text(encoding="utf-8"))
    if label_report and label_report.is_file():
        metrics["label_report"] = json.loads(label_report.read_text(encoding="utf-8"))
    write_json_atomic(model_dir / "metrics.json", metrics)
    plot_report(test_labels, test_probs, metrics, model_dir / "evaluation.png")
    return metrics


def plot_report(labels, probabilities: np.ndarray, metrics: dict, out: Path) -> None:
    """Confusion matrix and reliability diagram side by side: quicker to read than the JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    matrix = np.asarray(metrics["test"]["confusion_matrix"])
    left.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        left.text(j, i, str(value), ha="center", va="center", fontsize=14)
    left.set_xticks([0, 1], ["SWE", "DS"])
    left.set_yticks([0, 1], ["SWE", "DS"])
    left.set_xlabel("predicted")
    left.set_ylabel("true")
    left.set_title(
        f"test accuracy {metrics['test']['accuracy']:.3f} (TF-IDF {metrics['baseline_tfidf']['test']['accuracy']:.3f})"
    )
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.5, 1.0, 6)
    centers, accuracies = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            centers.append(confidence[in_bin].mean())
            accuracies.append(correct[in_bin].mean())
    right.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    right.plot(centers, accuracies, "o-", label="Model A")
    right.set_xlabel("confidence")
    right.set_ylabel("accuracy")
    right.set_title(f"reliability (ECE {metrics['test']['ece']:.3f})")
    right.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


@click.command("evaluate")
@click.option("--model-dir", type=click.Path(path_type=Path), default=Path("artifacts/model_a_v1"))
@click.option("--splits", type=click.Path(path_type=Path), default=Path("data/processed/splits"))
@click.option("--label-report", type=click.Path(path_type=Path), default=Path("data/processed/label_report.json"))
@click.option("--cv", "cv_report", type=click.Path(path_type=Path), default=Path("artifacts/cv_a/cv.json"))
def evaluate_command(model_dir: Path, splits: Path, label_report: Path, cv_report: Path) -> None:
    """Accuracy, macro-F1, confusion matrix and ECE on the test split, with the TF-IDF baseline."""
    metrics = evaluate_model(model_dir, splits, label_report, cv_report)
    test, base = metrics["test"], metrics["baseline_tfidf"]["test"]
    click.echo(
        f"evaluate: Model A test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}, "
        f"ECE {test['ece']:.3f} (n={test['n']}); TF-IDF baseline accuracy {base['accuracy']:.3f}, "
        f"macro-F1 {base['macro_f1']:.3f}"
    )
    if "cv" in metrics:
        cv = metrics["cv"]
        click.echo(
            f"evaluate: {cv['folds']}-fold CV accuracy {cv['accuracy_mean']:.3f} ± {cv['accuracy_std']:.3f} "
            f"(TF-IDF {cv['baseline_accuracy_mean']:.3f} ± {cv['baseline_accuracy_std']:.3f})"
        )
    click.echo(f"evaluate: wrote {model_dir}/metrics.json and {model_dir}/evaluation.png")
