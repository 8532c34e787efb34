"""The Hailo path on a real (tiny) BERT classifier: the host side against the ONNX model's own
intermediate outputs, the backend's InferModel control flow against a stand-in `hailo_platform`, and
every way the accelerator can fail falling back to the CPU with one clear reason."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import KAGGLE_CSV, require_module
from tests.support import hailo_standin

TOLERANCE = 1e-4


def kaggle_postings(count: int) -> list[str]:
    """Real 2025 postings, every other one cut to its first 200 characters (so some are padded)."""
    import csv

    csv.field_size_limit(sys.maxsize)
    with KAGGLE_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [" ".join(str(v) for v in row.values() if v) for row in rows[:count]]
    return [text if i % 2 else text[:200] for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def hailo_kit(tmp_path_factory):
    """A tiny trained classifier, its INT8 bundle, and its Hailo kit + Hailo bundle (cut as the "HEF")."""
    require_module("torch", "the cloud extra")
    from cloud.export.builder import EvalSet, export_bundle
    from cloud.export.hailo import CUT_FILE, bundle_for_hailo, classifier_reference, export_hailo, export_reference
    from cloud.export.reference import load_classifier
    from device.runtime.hailo_host import HOST_WEIGHTS_FILE, EncoderCut
    from tests.support.tiny_model import TINY_MAX_LENGTH, synthetic_postings, train_tiny_classifier

    root = tmp_path_factory.mktemp("hailo")
    hf_dir = train_tiny_classifier(root / "hf")
    texts, labels = synthetic_postings(40, 1)
    bundle = root / "tiny"
    export_bundle(
        hf_dir, bundle, EvalSet(texts, labels), name="tiny", version="1", max_length=TINY_MAX_LENGTH,
        work_dir=root / "work", scheme="blockwise",
    )  # fmt: skip
    kit = root / "kit"
    report = export_hailo(hf_dir, kit, texts, texts, labels, "clean")
    # The stand-in device runs the cut itself: give the bundle that file as its HEF.
    with np.load(kit / HOST_WEIGHTS_FILE) as weights:
        host = dict(weights)
    cut = EncoderCut(**report["cut"])
    hailo_bundle = bundle_for_hailo(bundle, root / "tiny_hailo", cut, host, kit / CUT_FILE, report["accuracy"])
    model = load_classifier(hf_dir)
    export_reference(classifier_reference(model), root / "reference.onnx")
    return {"hf": hf_dir, "bundle": bundle, "kit": kit, "report": report, "hailo_bundle": hailo_bundle,
            "reference": root / "reference.onnx", "model": model}  # fmt: skip


@pytest.fixture
def stand_in(monkeypatch):
    module = hailo_standin.module()
    monkeypatch.setitem(sys.modules, "hailo_platform", module)
    return module


def test_kit_holds_what_the_dataflow_compiler_needs(hailo_kit):
    kit = hailo_kit["kit"]
    for name in ("encoder_cut.onnx", "calibration.npz", "model.alls", "hailo_host.npz", "COMPILE.md", "report.json"):
        assert (kit / name).is_file(), name
    with np.load(kit / "calibration.npz") as calibration:
        assert calibration["embedding"].shape[1:] == (128, 32)
        assert calibration["masked_fill"].shape[1:] == (128, 2 * 128)
        assert set(np.unique(calibration["masked_fill"])) <= {0.0, 1.0}
    assert (
        "--start-node-names embedding masked_fill --end-node-names last_hidden_state"
        in (kit / "COMPILE.md").read_text()
    )
    assert "set_input_mask_to_softmax()" in (kit / "model.alls").read_text()
    # the cut + host side is the HF model itself (same 128 tokens): the logits match
    assert hailo_kit["report"]["max_abs_logit_diff_vs_hf"] <= TOLERANCE
    assert hailo_kit["report"]["agreement_with_hf"] == 1.0


def test_host_side_matches_the_onnx_models_own_intermediates(hailo_kit):
    import onnxruntime as ort

    from cloud.export.hailo import encode_fixed
    from device.runtime.hailo_host import HostSide
    from shared.bundle import read_manifest

    manifest = read_manifest(hailo_kit["hailo_bundle"])
    host = HostSide.load(hailo_kit["hailo_bundle"], manifest)
    ids, mask = encode_fixed(hailo_kit["hf"] / "tokenizer.json", kaggle_postings(12), "clean")
    assert mask.sum(1).min() < 128 <= mask.shape[1]  # some postings are padded: the mask matters
    session = ort.InferenceSession(str(hailo_kit["reference"]), providers=["CPUExecutionProvider"])
    logits, embedding, expanded, hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})
    assert np.abs(host.embeddings(ids) - embedding).max() <= TOLERANCE
    assert np.abs(host.mask(mask) - expanded).max() == 0.0
    assert np.abs(host.logits(hidden, mask) - logits).max() <= TOLERANCE
    with np.errstate(all="ignore"):
        assert np.abs(hailo_kit["model"](**_torch(ids, mask)).logits.detach().numpy() - logits).max() <= TOLERANCE


def _torch(ids, mask):
    import torch

    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def test_backend_runs_the_infer_model_flow_and_matches_the_reference(hailo_kit, stand_in):
    import onnxruntime as ort

    from cloud.export.hailo import encode_fixed
    from device.runtime import load_backend
    from shared.probabilities import softmax

    backend = load_backend(hailo_kit["hailo_bundle"], backend="auto", threads=1)
    assert backend.type_key == "hailo" and backend.fallback_reason is None
    texts = kaggle_postings(6)
    runs_before = stand_in.ConfiguredInferModel.runs
    predictions = backend.predict(texts)
    assert stand_in.ConfiguredInferModel.runs - runs_before == len(texts)  # one HEF run per posting
    # Reference: the full ONNX path on the same 128-token input, in the bundle's own preprocessing.
    ids, mask = encode_fixed(hailo_kit["hf"] / "tokenizer.json", texts, backend.preprocessing)
    session = ort.InferenceSession(str(hailo_kit["reference"]), providers=["CPUExecutionProvider"])
    expected = softmax(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
    got = np.array([p.probabilities for p in predictions])
    assert np.abs(got - expected).max() <= TOLERANCE
    backend.close()
    assert stand_in.VDevice.released >= 1


def test_auto_without_a_hailo_export_is_the_cpu_silently(hailo_kit, stand_in):
    from device.runtime import load_backend

    backend = load_backend(hailo_kit["bundle"], backend="auto", threads=1)
    assert backend.type_key == "onnxruntime" and backend.fallback_reason is None


@pytest.mark.parametrize(
    "breakage, reason",
    [
        ("no_package", "hailo_platform package, which is not installed"),
        ("busy", "is another process using it"),
        ("corrupt_hef", "does not match its sha256"),
        ("missing_hef", "has no model.hef"),
        ("foreign_hef", "input embedding has shape"),
    ],
)
def test_an_accelerator_that_cannot_run_falls_back_to_the_cpu(
    hailo_kit, stand_in, tmp_path, monkeypatch, breakage, reason
):
    from device.runtime import load_backend

    bundle = tmp_path / "bundle"
    shutil.copytree(hailo_kit["hailo_bundle"], bundle)
    hef = None
    if breakage == "no_package":
        monkeypatch.setitem(sys.modules, "hailo_platform", None)
    elif breakage == "busy":
        stand_in.VDevice.busy = True
    elif breakage == "corrupt_hef":
        with (bundle / "model.hef").open("r+b") as handle:
            handle.seek(100)
            handle.write(b"\0" * 16)
    elif breakage == "missing_hef":
        (bundle / "model.hef").unlink()
    elif breakage == "foreign_hef":  # a HEF compiled for another model: 64 tokens, not 128
        hef = tmp_path / "other.hef"
        _export_cut_at(hailo_kit["model"], 64, hef)
    backend = load_backend(bundle, backend="hailo", threads=1, hef=hef)
    assert backend.type_key == "onnxruntime"
    assert reason in backend.fallback_reason and "\n" not in backend.fallback_reason
    assert backend.predict(["Senior data scientist: statistics, pandas, SQL"])[0].label in (0, 1)


def _export_cut_at(model, length: int, path: Path) -> None:
    import torch

    from cloud.export.hailo import classifier_reference

    cut = classifier_reference(model).cut
    hidden, heads = model.config.hidden_size, model.config.num_attention_heads
    torch.onnx.export(
        cut,
        (torch.zeros(1, length, hidden), torch.ones(1, length, heads * length)),
        str(path),
        input_names=["embedding", "masked_fill"],
        output_names=["last_hidden_state"],
        opset_version=17,
        dynamo=False,
    )


def test_daemon_with_a_corrupt_hef_keeps_serving_on_the_cpu_and_says_why(hailo_kit, stand_in, tmp_path, caplog):
    from device.config import load_config
    from device.daemon import Daemon

    bundle = tmp_path / "bundle"
    shutil.copytree(hailo_kit["hailo_bundle"], bundle)
    (bundle / "model.hef").write_bytes(b"not a hef")
    config = load_config(env={})
    config.override("store", path=tmp_path / "predictions.db")
    with caplog.at_level("WARNING", logger="device.daemon"):
        daemon = Daemon(config, bundle_dir=bundle)
    try:
        assert not daemon.degraded
        warnings = [r for r in caplog.records if r.getMessage() == "hailo.unavailable"]
        assert len(warnings) == 1 and "sha256" in warnings[0].fields["reason"]
        result = daemon.classify("Machine learning engineer: pandas, statistics, experiments", "api")
        assert result.stored and result.prediction.label in (0, 1)
        info = daemon.model_info()
        assert info["backend"] == "onnxruntime" and "sha256" in info["accelerator_unavailable"]
        json.dumps(daemon.status())  # the status page can show it
    finally:
        daemon.close()
