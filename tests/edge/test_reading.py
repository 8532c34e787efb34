"""Reading a posting in several windows (`shared.reading`, manifest `windows`): the windows are the
posting's word pieces in order, the device averages their logits exactly as the trainer scores them,
and a bad `windows` value is refused with one clear line. Real tiny BERT, real INT8 export, real 2025
postings (the committed Kaggle CSV)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from shared.bundle import TOKENIZER_FILE, BundleError, read_manifest, save_manifest
from shared.reading import average_windows, posting_windows, window_encodings
from tests.support.tiny_model import TINY_MAX_LENGTH, synthetic_postings, train_tiny_classifier

WINDOWS = 3


def real_postings(kaggle_csv: Path, count: int) -> list[str]:
    from shared.text import clean_text

    with open(kaggle_csv, newline="", encoding="utf-8") as handle:
        return [clean_text(row["description"]) for row, _ in zip(csv.DictReader(handle), range(count))]


def hand_cut_windows(tokenizer_path: Path, text: str, windows: int) -> list[list[int]]:
    """The windows cut by hand from the untruncated tokenization: [CLS] + chunk + [SEP], no overlap."""
    from tokenizers import Tokenizer

    whole = Tokenizer.from_file(str(tokenizer_path))
    whole.no_truncation()
    whole.no_padding()
    ids = whole.encode(text, add_special_tokens=False).ids
    cls, sep, width = whole.token_to_id("[CLS]"), whole.token_to_id("[SEP]"), TINY_MAX_LENGTH - 2
    chunks = [ids[i : i + width] for i in range(0, max(len(ids), 1), width)][:windows]
    return [[cls, *chunk, sep] for chunk in chunks]


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory) -> Path:
    return train_tiny_classifier(tmp_path_factory.mktemp("reading") / "hf", seed=5)


@pytest.fixture(scope="module")
def windowed_bundle(tiny_hf, tmp_path_factory, kaggle_csv) -> Path:
    """The tiny model exported through the production path with `windows = 3`, gated on long postings."""
    from cloud.export.builder import EvalSet, export_bundle

    texts, labels = synthetic_postings(12, 9)
    long_texts = [" ".join([text] * 12) for text in texts]  # ~3 windows of 64 pieces each
    root = tmp_path_factory.mktemp("windowed")
    export_bundle(
        tiny_hf,
        root / "bundle",
        EvalSet(long_texts, labels),
        name="tiny_windows",
        version="1",
        max_length=TINY_MAX_LENGTH,
        work_dir=root / "work",
        windows=WINDOWS,
    )
    return root / "bundle"


def test_windows_are_the_postings_word_pieces_in_order(tiny_hf, kaggle_csv):
    from shared.text import load_tokenizer

    tokenizer = load_tokenizer(tiny_hf / "tokenizer.json", TINY_MAX_LENGTH)
    tokenizer.no_padding()
    for text in real_postings(kaggle_csv, 25) + ["short posting"]:
        got = [w.ids for w in posting_windows(tokenizer.encode(text), WINDOWS)]
        assert got == hand_cut_windows(tiny_hf / "tokenizer.json", text, WINDOWS)


def test_window_logits_average_per_posting():
    encodings = [type("E", (), {"overflowing": [object(), object()]})(), type("E", (), {"overflowing": []})()]
    flat, owners = window_encodings(encodings, 2)
    assert len(flat) == 3 and owners.tolist() == [0, 0, 1]
    logits = np.array([[1.0, 3.0], [3.0, 5.0], [-2.0, 2.0]])
    np.testing.assert_allclose(average_windows(logits, owners, 2), [[2.0, 4.0], [-2.0, 2.0]])
    with pytest.raises(ValueError, match="at least one window"):
        average_windows(logits, owners, 3)


def test_device_averages_the_windows_like_the_onnx_graph_run_by_hand(windowed_bundle, kaggle_csv):
    from device.runtime import load_backend
    from shared.probabilities import softmax

    backend = load_backend(windowed_bundle, threads=1)
    assert backend.windows == WINDOWS
    texts = real_postings(kaggle_csv, 6)
    predictions = backend.predict_model_inputs(texts)
    for text, prediction in zip(texts, predictions):
        rows = hand_cut_windows(windowed_bundle / TOKENIZER_FILE, text, WINDOWS)
        assert len(rows) == WINDOWS  # real postings are far longer than 3 x 64 pieces
        logits = [
            backend.session.run(
                ["logits"],
                {
                    "input_ids": np.array([row]),
                    "attention_mask": np.ones((1, len(row)), dtype=np.int64),
                    "token_type_ids": np.zeros((1, len(row)), dtype=np.int64),
                },
            )[0][0]
            for row in rows
        ]
        expected = softmax(np.mean(logits, axis=0, keepdims=True))[0]
        assert prediction.probabilities == pytest.approx(expected.tolist(), abs=1e-5)


def test_windowed_batches_match_one_by_one_and_short_texts_read_once(windowed_bundle, tiny_bundle, kaggle_csv):
    from device.runtime import load_backend

    backend = load_backend(windowed_bundle, threads=1)
    texts = real_postings(kaggle_csv, 5) + ["sql and pandas", "java backend"]
    batched = backend.predict_model_inputs(texts)
    for text, prediction in zip(texts, batched):
        assert prediction.probabilities == pytest.approx(
            backend.predict_model_inputs([text])[0].probabilities, abs=2e-3
        )
    short = backend.encode(["sql and pandas"])
    assert short.input_ids.shape[0] == 1 and short.owners.tolist() == [0]


def test_prefix_tokenization_keeps_every_window(windowed_bundle, kaggle_csv):
    """The runtime tokenizes a whitespace-bounded prefix of max_length * windows * 6 characters (doubled while too short); all
    three windows must equal the whole text's, also for texts built to defeat the prefix."""
    from device.runtime import load_backend

    backend = load_backend(windowed_bundle, threads=1)
    texts = real_postings(kaggle_csv, 40) + [" ".join(["y" * 120] * 100), "z" * 5000, "data\n" * 2000]
    for text in texts:
        batch = backend.encode([text])
        rows = [row[mask == 1].tolist() for row, mask in zip(batch.input_ids, batch.attention_mask)]
        assert rows == hand_cut_windows(windowed_bundle / TOKENIZER_FILE, text, WINDOWS)


def test_export_records_windows_and_gates_on_the_windowed_reading(windowed_bundle):
    from device.sync.healthcheck import golden_health_check
    from shared.bundle import verify_bundle

    manifest = verify_bundle(windowed_bundle)
    assert manifest["windows"] == WINDOWS
    assert manifest["metrics"]["parity"]["agreement"] >= 0.99
    report = golden_health_check(windowed_bundle)  # the OTA health check reads the windows too
    assert report.ok and report.agreed == report.checked > 0, report.detail


def test_trainer_scores_windows_as_the_device_reads_them(tiny_hf, windowed_bundle, kaggle_csv):
    """FP32 PyTorch with `windows = 3` (what evaluate-b and export-b's reference use) decides like
    the INT8 bundle, and the frozen-prefix cache path gives the plain path's logits."""
    from cloud.training.finetune import read_logits
    from cloud.training.frozen_prefix import FrozenPrefix, PrefixCache
    from cloud.training.model_io import load_classifier
    from device.runtime import load_backend

    (tiny_hf.parent / "train_log.json").write_text(
        json.dumps({"config": {"max_length": TINY_MAX_LENGTH, "preprocessing": "clean", "windows": WINDOWS}})
    )
    classifier = load_classifier(tiny_hf.parent)
    assert classifier.windows == WINDOWS
    texts = real_postings(kaggle_csv, 10)
    plain = classifier.predict_logits(texts)
    device = np.array([p.probabilities for p in load_backend(windowed_bundle, threads=1).predict(texts)])
    assert (plain.argmax(1) == device.argmax(1)).all()

    cache, prefix = PrefixCache(progress=False), FrozenPrefix(classifier.model, 1)
    from shared.text import model_input

    inputs = [model_input(t, "clean") for t in texts]
    cached = read_logits(
        classifier.tokenizer, inputs, WINDOWS, lambda items, encode_batch: cache.logits(prefix, encode_batch, items)
    )
    np.testing.assert_allclose(cached, plain, atol=1e-4)
    one_window = read_logits(
        classifier.tokenizer, inputs, 1, lambda items, encode_batch: cache.logits(prefix, encode_batch, items)
    )
    assert not np.allclose(one_window, plain, atol=1e-3)  # the extra windows do change the answer


@pytest.mark.parametrize("value", [0, -1, "3", 2.5, True])
def test_a_bad_windows_value_is_refused_in_one_line(bundle_copy, value):
    from device.runtime import load_backend
    from shared.errors import UserError

    manifest = read_manifest(bundle_copy)
    manifest["windows"] = value
    save_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError, match="windows must be a positive integer"):
        read_manifest(bundle_copy)
    with pytest.raises(UserError, match="windows must be a positive integer"):
        load_backend(bundle_copy, threads=1)


def test_train_b_refuses_a_bad_windows_setting():
    from cloud.training.train_b import reading_windows_setting
    from shared.errors import UserError

    assert reading_windows_setting(3) == 3
    with pytest.raises(UserError, match="train_b.windows: windows must be a positive integer"):
        reading_windows_setting(0)


def test_explanations_cover_every_window_read_and_nothing_after(windowed_bundle):
    from device.explain import driving_terms
    from device.runtime import load_backend

    backend = load_backend(windowed_bundle, threads=1)
    filler = "team " * (TINY_MAX_LENGTH * 3 // 2)  # pandas lands in the 2nd of 3 windows
    assert {name for name, _ in driving_terms(backend, filler + "pandas")} == {"pandas"}
    assert driving_terms(backend, "team " * (TINY_MAX_LENGTH * WINDOWS) + "pandas") == []
