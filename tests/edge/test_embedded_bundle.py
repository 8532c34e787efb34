"""The Model A bundle shipped in the package must stay usable with the runtime it ships beside:
its files match their sha256s, and the current runtime gives every golden example the label the
FP32 model gave it at export. A change to preprocessing, tokenization or the runtime that would
silently change the shipped model's answers fails here."""

from __future__ import annotations

import json
import subprocess
import sys

from device.config import EMBEDDED_BUNDLE
from device.runtime import load_backend
from shared.bundle import read_golden, verify_bundle


def test_the_embedded_bundle_verifies():
    manifest = verify_bundle(EMBEDDED_BUNDLE)
    assert manifest["name"] == "model_a_v1"
    assert set(manifest["files"]) >= {"model.onnx", "tokenizer.json", "golden.jsonl"}


def test_the_current_runtime_passes_every_golden_example():
    golden = read_golden(EMBEDDED_BUNDLE)
    assert len(golden) >= 4 and {example["label"] for example in golden} == {0, 1}
    backend = load_backend(EMBEDDED_BUNDLE, threads=1)
    predictions = backend.predict([example["text"] for example in golden])
    assert [p.label for p in predictions] == [example["label"] for example in golden]
    # Golden examples are the most confident of each class: INT8 stays far from the boundary on them.
    assert all(p.confidence > 0.9 for p in predictions)


def test_predict_uses_the_embedded_bundle_without_a_model_flag(tmp_path):
    """Run from anywhere with no config and no over-the-air slot: the shipped bundle answers."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "device.cli",
            "predict",
            "--json",
            "--no-store",
            "We need a data scientist: pandas, SQL.",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["model_version"] == "model_a_v1@1"
    assert answer["label"] in (0, 1)
