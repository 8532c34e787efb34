"""`careeredge-cloud export` end to end on a tiny trained model and real split CSVs (needs torch)."""

from __future__ import annotations

import csv
import hashlib

from click.testing import CliRunner

from cloud.export.command import export_command
from shared.bundle import verify_bundle
from tests.support.tiny_model import TINY_MAX_LENGTH, synthetic_postings, train_tiny_classifier


def _write_split(path, texts, labels):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "text", "label"])
        for i, (text, label) in enumerate(zip(texts, labels)):
            writer.writerow([f"p{i}", "a title", text, label])


def test_export_command_writes_a_verified_bundle(tmp_path):
    hf_dir = train_tiny_classifier(tmp_path / "hf")
    splits = tmp_path / "splits"
    splits.mkdir()
    _write_split(splits / "train.csv", *synthetic_postings(64, 0))
    _write_split(splits / "test.csv", *synthetic_postings(30, 7))
    params = tmp_path / "params.yaml"
    params.write_text(
        f"model:\n  base: tiny\n  max_length: {TINY_MAX_LENGTH}\nexport:\n  session:\n    spin_within_run: true\n"
    )

    out = tmp_path / "bundles" / "model_x"
    result = CliRunner().invoke(
        export_command,
        [
            "--model-dir",
            str(hf_dir),
            "--splits",
            str(splits),
            "--name",
            "model_x",
            "--version",
            "2",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
            "--params",
            str(params),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "parity on 30 test postings: agreement 100.00%" in result.stdout

    manifest = verify_bundle(out)
    assert (manifest["name"], manifest["version"], manifest["base_model"]) == ("model_x", "2", "tiny")
    assert manifest["max_length"] == TINY_MAX_LENGTH
    assert manifest["session"] == {"spin_within_run": True}  # params.yaml export.session, for the device
    assert manifest["metrics"]["quantization"]["scheme"] == "per_token"
    assert manifest["training_data_hash"] == hashlib.sha256((splits / "train.csv").read_bytes()).hexdigest()
    assert (tmp_path / "work" / "model_fp32_fused.onnx").is_file()
    golden_ids = [line for line in (out / "golden.jsonl").read_text().splitlines()]
    assert golden_ids and all('"id": "p' in line for line in golden_ids)


def test_export_command_without_a_model_is_a_user_error(tmp_path):
    result = CliRunner().invoke(export_command, ["--model-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no trained model at" in result.output and "train-a" in result.output
