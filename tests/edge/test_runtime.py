"""The ONNX Runtime backend: labels, batching, padding, threads, registry, lazy Hailo."""

from __future__ import annotations

import pytest

from device.runtime import available_backends, load_backend
from shared.errors import UserError

DS_TEXT = "Data Scientist: statistics, pandas, regression and A/B testing on product experiments."
SWE_TEXT = "Backend engineer: Java, Spring, microservices on Kubernetes with Docker and CI/CD."


def test_predicts_the_classes_with_contract_fields(backend):
    ds, swe = backend.predict([DS_TEXT, SWE_TEXT])
    assert (ds.label, ds.label_name) == (1, "Data Science")
    assert (swe.label, swe.label_name) == (0, "Software Engineering")
    assert sum(ds.probabilities) == pytest.approx(1.0)
    assert ds.to_json(id="x").keys() == {"id", "label", "label_name", "probabilities", "model_version", "latency_ms"}
    assert ds.model_version == "tiny_model@1" and ds.latency_ms > 0


def test_batching_matches_one_by_one_despite_padding(backend):
    texts = [DS_TEXT, "sql", SWE_TEXT * 3, "pandas and java", "Rust"]
    batched = backend.predict(texts)
    for text, prediction in zip(texts, batched):
        alone = backend.predict([text])[0]
        assert prediction.label == alone.label
        assert prediction.probabilities == pytest.approx(alone.probabilities, abs=2e-3)


def test_the_daemons_pre_tokenized_path_answers_like_predict(backend):
    """The daemon runs model_input and tokenization in its request threads and hands the inference thread
    encodings (`predict_tokenized`): the answers are predict's."""
    from shared.text import model_input

    texts = [DS_TEXT, "sql", SWE_TEXT * 3, "pandas and java"]
    encodings = backend.tokenize([model_input(t, backend.preprocessing) for t in texts])
    for direct, tokenized in zip(backend.predict(texts), backend.predict_tokenized(encodings)):
        assert tokenized.label == direct.label
        assert tokenized.probabilities == pytest.approx(direct.probabilities, abs=1e-6)


def test_pads_only_to_the_longest_text_in_the_batch(backend):
    batch = backend.encode(["short text", "a slightly longer text than that"])
    assert batch.input_ids.shape[1] < backend.max_length
    assert batch.attention_mask[0].sum() < batch.input_ids.shape[1] == batch.attention_mask[1].sum()


def test_truncates_to_the_bundle_max_length(backend):
    batch = backend.encode(["word " * 1000])
    assert batch.input_ids.shape == (1, backend.max_length)


def test_thread_count_reaches_the_session(tiny_bundle):
    engine = load_backend(tiny_bundle, threads=2)
    assert engine.session.get_session_options().intra_op_num_threads == 2


def _with_manifest(bundle, tmp_path, **changes):
    """A copy of `bundle` whose manifest has `changes` (None deletes a key), rewritten (the manifest lists no hash of itself)."""
    import shutil

    from shared.bundle import read_manifest, save_manifest

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = read_manifest(copy)
    for key, value in changes.items():
        manifest.pop(key, None) if value is None else manifest.__setitem__(key, value)
    save_manifest(copy, manifest)
    return copy


def test_session_settings_come_from_the_manifest_and_an_older_bundle_runs_without_them(tiny_bundle, tmp_path):
    """The export writes params.yaml's `export.session` into the manifest; a bundle exported before that
    section existed loads, with spinning off, and answers exactly the same."""
    spinning = load_backend(_with_manifest(tiny_bundle, tmp_path / "a", session={"spin_within_run": True}))
    options = spinning.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"

    older = load_backend(_with_manifest(tiny_bundle, tmp_path / "b", session=None))
    assert older.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    texts = [DS_TEXT, SWE_TEXT]
    assert [p.probabilities for p in older.predict(texts)] == [p.probabilities for p in spinning.predict(texts)]


@pytest.mark.parametrize(
    "session, message",
    [({"spin": True}, "unknown session setting 'spin'"), ({"spin_within_run": "yes"}, "must be bool"), ([], "mapping")],
)
def test_a_bad_session_setting_is_refused_in_one_line(tiny_bundle, tmp_path, session, message):
    from shared.bundle import BundleError

    with pytest.raises(BundleError, match=message) as error:
        load_backend(_with_manifest(tiny_bundle, tmp_path, session=session))
    assert "\n" not in str(error.value)


def test_registry_and_backend_errors(tiny_bundle):
    assert {"onnxruntime", "hailo"} <= set(available_backends())
    with pytest.raises(UserError, match="unknown backend 'tpu'"):
        load_backend(tiny_bundle, backend="tpu")
    with pytest.raises(UserError, match="threads must be a positive integer"):
        load_backend(tiny_bundle, threads=0)


def test_hailo_backend_explains_what_is_missing(tiny_bundle):
    # The tiny bundle was not exported for Hailo, and this machine has no hailo_platform: the CPU serves it,
    # and says why in one line (tests/appliance/test_hailo.py covers every other reason).
    backend = load_backend(tiny_bundle, backend="hailo")
    assert backend.type_key == "onnxruntime" and "has no 'hailo' block" in backend.fallback_reason
    from device.runtime.hailo_backend import import_hailo

    try:
        import hailo_platform  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="hailo_platform package, which is not installed"):
            import_hailo()


def test_prefix_tokenization_equals_full_tokenization(backend, tiny_bundle, kaggle_csv):
    """The runtime tokenizes a whitespace-bounded prefix; the ids must equal the whole text's, on
    every real 2025 posting and on texts built to defeat the prefix (long [UNK] words, no spaces)."""
    import csv

    from shared.bundle import TOKENIZER_FILE
    from shared.text import clean_text, load_tokenizer

    full = load_tokenizer(tiny_bundle / TOKENIZER_FILE, backend.max_length)
    with open(kaggle_csv, newline="", encoding="utf-8") as handle:
        texts = [clean_text(row["description"]) for row in csv.DictReader(handle)]
    long_words = " ".join(["y" * 120] * 100)  # each >100-char word is one [UNK]: the prefix cannot overflow
    texts += [long_words, "z" * 5000, "data\n" * 2000, "short"]
    for text in texts:
        batch, whole = backend.encode([text]), full.encode(text)
        assert batch.input_ids[0].tolist() == whole.ids
        assert batch.attention_mask[0].tolist() == whole.attention_mask
        assert batch.token_type_ids[0].tolist() == whole.type_ids
