"""The shared frozen-bottom cache behind train-b's arms, evaluate-b and study-b: same answers as the full
model, computed once, and never read by a model whose bottom differs. Real tiny BERT (2 layers, 1 frozen)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.tiny_model import TINY_MAX_LENGTH, synthetic_postings, train_tiny_classifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefix")
    train_tiny_classifier(root / "hf", seed=4)
    (root / "train_log.json").write_text(
        json.dumps({"config": {"max_length": TINY_MAX_LENGTH, "preprocessing": "clean"}})
    )
    return root


def config_for(model_dir, **overrides):
    from cloud.training.finetune import FineTuneConfig

    values = dict(
        base=str(model_dir / "hf"),
        max_length=TINY_MAX_LENGTH,
        epochs=1,
        batch_size=8,
        learning_rate=1e-3,
        seed=1,
        threads=1,
        freeze_layers=1,
        progress=False,
    )
    values.update(overrides)
    return FineTuneConfig(**values)


def test_cached_bottom_gives_the_full_models_logits(tiny):
    from cloud.training.finetune import encode
    from cloud.training.frozen_prefix import FrozenPrefix, PrefixCache
    from cloud.training.model_io import load_classifier
    from shared.text import model_input

    classifier = load_classifier(tiny)
    texts, _ = synthetic_postings(20, 7)
    full = classifier.predict_logits(texts)
    cache = PrefixCache(progress=False)
    prefix = FrozenPrefix(classifier.model, 1)
    inputs = [model_input(t, "clean") for t in texts]
    encode_batch = lambda batch: encode(classifier.tokenizer, batch)  # noqa: E731
    assert cache.ensure(prefix, encode_batch, inputs) == len(set(inputs))
    assert cache.ensure(prefix, encode_batch, inputs[:5]) == 0  # computed once
    cached = prefix.predict_logits(cache.states(inputs))
    np.testing.assert_allclose(cached, full, atol=1e-4)
    # the model is whole again afterwards
    np.testing.assert_allclose(classifier.predict_logits(texts), full, atol=1e-6)


def test_cache_refuses_a_model_with_another_bottom(tiny, tmp_path):
    from cloud.training.finetune import encode
    from cloud.training.frozen_prefix import FrozenPrefix, PrefixCache, shares_bottom
    from cloud.training.model_io import load_classifier

    a = load_classifier(tiny)
    other_dir = tmp_path / "other"
    train_tiny_classifier(other_dir / "hf", seed=9)
    (other_dir / "train_log.json").write_text((tiny / "train_log.json").read_text())
    other = load_classifier(other_dir)
    cache = PrefixCache(progress=False)
    cache.ensure(FrozenPrefix(a.model, 1), lambda b: encode(a.tokenizer, b), ["java api"])
    assert not shares_bottom(a.model, other.model, 1)
    with pytest.raises(ValueError, match="frozen bottom differs"):
        cache.ensure(FrozenPrefix(other.model, 1), lambda b: encode(other.tokenizer, b), ["java api"])


def test_arms_sharing_a_cache_train_as_without_it(tiny):
    from cloud.training.finetune import fine_tune
    from cloud.training.frozen_prefix import FrozenPrefix, shares_bottom
    from cloud.training.train_b import new_prefix_cache, predict_labels, warm_prefix_cache

    config = config_for(tiny)
    train_texts, train_labels = synthetic_postings(24, 2)
    val_texts, val_labels = synthetic_postings(12, 3)
    cache = new_prefix_cache(config)
    warm_prefix_cache(cache, config, train_texts + val_texts)
    warmed = len(cache)
    shared = fine_tune(train_texts, train_labels, val_texts, val_labels, config, prefix_cache=cache)
    assert len(cache) == warmed  # nothing recomputed by the arm
    alone = fine_tune(train_texts, train_labels, val_texts, val_labels, config)
    assert shared.history[0]["val_accuracy"] == alone.history[0]["val_accuracy"]
    for (name, p), (_, q) in zip(shared.model.named_parameters(), alone.model.named_parameters()):
        assert np.allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-4), name
    # B's frozen bottom is still A's: the cache stays valid for it, and cached scoring = full scoring
    assert FrozenPrefix(shared.model, 1).fingerprint() == cache.fingerprint
    assert shares_bottom(shared.model, alone.model, 1)
    test_texts, _ = synthetic_postings(16, 5)
    assert list(predict_labels(shared, config, test_texts, cache)) == list(predict_labels(shared, config, test_texts))


def test_pseudo_weights_and_sample_weights_change_training(tiny):
    from cloud.training.finetune import fine_tune
    from cloud.training.train_b import pseudo_weights
    from shared.errors import UserError

    rows = [{"confidence": "0.95"}, {"confidence": ""}, {"confidence": "0.91"}]
    assert pseudo_weights(rows, "confidence") == [0.95, 1.0, 0.91]
    assert pseudo_weights(rows, 0.5) == [0.5] * 3
    with pytest.raises(UserError):
        pseudo_weights(rows, 0)
    config = config_for(tiny, freeze_layers=0)
    texts, labels = synthetic_postings(16, 8)
    flipped = [1 - label for label in labels[:8]] + labels[8:]  # half the rows carry wrong labels
    plain = fine_tune(texts, flipped, [], [], config)
    weighted = fine_tune(texts, flipped, [], [], config, sample_weights=[0.05] * 8 + [1.0] * 8)
    assert plain.history[0]["train_loss"] != weighted.history[0]["train_loss"]


def test_deepened_cache_equals_a_fresh_deeper_one(tiny):
    from cloud.training.finetune import encode
    from cloud.training.frozen_prefix import FrozenPrefix, PrefixCache
    from cloud.training.model_io import load_classifier
    from shared.text import model_input

    classifier = load_classifier(tiny)
    inputs = [model_input(t, "clean") for t in synthetic_postings(12, 6)[0]]
    encode_batch = lambda batch: encode(classifier.tokenizer, batch)  # noqa: E731
    one, two = PrefixCache(progress=False), PrefixCache(progress=False)
    one.ensure(FrozenPrefix(classifier.model, 1), encode_batch, inputs)
    two.ensure(FrozenPrefix(classifier.model, 2), encode_batch, inputs)
    deepened = one.deepen(FrozenPrefix(classifier.model, 2))
    assert deepened.fingerprint == two.fingerprint and len(deepened) == len(two)
    for got, want in zip(deepened.states(inputs), two.states(inputs)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    with pytest.raises(ValueError):
        two.deepen(FrozenPrefix(classifier.model, 1))
