"""WiSE-FT interpolation between Model A and a Model B started from it (`cloud.training.interpolate`),
on two tiny real BERTs trained in the test (needs torch)."""

from __future__ import annotations

import pytest

from shared.errors import UserError
from tests.support.tiny_model import train_tiny_classifier


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("interpolate")
    load = lambda d: AutoModelForSequenceClassification.from_pretrained(d, local_files_only=True).eval()  # noqa: E731
    return load(train_tiny_classifier(root / "a", seed=1)), load(train_tiny_classifier(root / "b", seed=2))


def test_the_line_runs_from_a_to_b(pair):
    import torch

    from cloud.training.interpolate import interpolate

    a, b = pair
    assert interpolate(a, b, 1.0) is b
    start, end = a.state_dict(), b.state_dict()
    at_a, half = interpolate(a, b, 0.0).state_dict(), interpolate(a, b, 0.5).state_dict()
    for name, value in end.items():
        assert torch.equal(at_a[name], start[name]), name  # alpha 0 is A, bit for bit
        if value.is_floating_point():
            assert torch.allclose(half[name], (start[name] + value) / 2, atol=1e-6), name
    assert not torch.equal(half["classifier.weight"], end["classifier.weight"])
    assert torch.equal(b.state_dict()["classifier.weight"], end["classifier.weight"])  # B itself is untouched


def test_parameters_the_two_share_come_out_bit_for_bit(pair):
    """B's frozen bottom is A's; the frozen-bottom cache checks it by a byte fingerprint, -0.0 included."""
    import copy

    import torch

    from cloud.training.frozen_prefix import FrozenPrefix
    from cloud.training.interpolate import interpolate

    a, b = pair
    a = copy.deepcopy(a)
    with torch.no_grad():
        a.bert.embeddings.LayerNorm.bias[0] = -0.0
    b = copy.deepcopy(b)
    b.bert.embeddings.load_state_dict(a.bert.embeddings.state_dict())
    b.bert.encoder.layer[0].load_state_dict(a.bert.encoder.layer[0].state_dict())
    mixed = interpolate(a, b, 0.5)
    assert FrozenPrefix(mixed, 1).fingerprint() == FrozenPrefix(a, 1).fingerprint()
    assert torch.signbit(mixed.bert.embeddings.LayerNorm.bias[0])
    assert FrozenPrefix(mixed, 2).fingerprint() != FrozenPrefix(a, 2).fingerprint()  # the trained block moved


def test_bad_alpha_or_unrelated_models_are_clear_errors(pair):
    from cloud.training.encoder_anatomy import shallow_copy
    from cloud.training.interpolate import interpolate

    a, b = pair
    for alpha in (-0.1, 1.5):
        with pytest.raises(UserError, match="alpha must be in"):
            interpolate(a, b, alpha)
    with pytest.raises(UserError, match="parameters differ"):
        interpolate(shallow_copy(a, (0,)), b, 0.5)


def test_a_soup_is_the_mean_of_its_models_and_keeps_what_they_share(pair):
    import copy

    import torch

    from cloud.training.interpolate import average, interpolate

    a, b = (copy.deepcopy(m) for m in pair)  # the fixture's models stay untouched
    b_shared = copy.deepcopy(b)
    with torch.no_grad():  # a frozen bottom both fine-tunes kept from their start, -0.0 included
        b_shared.bert.embeddings.word_embeddings.weight.copy_(a.bert.embeddings.word_embeddings.weight)
        a.bert.embeddings.word_embeddings.weight[0, 0] = -0.0
        b_shared.bert.embeddings.word_embeddings.weight[0, 0] = -0.0
    soup = average([a, b_shared]).state_dict()
    midpoint = interpolate(a, b_shared, 0.5).state_dict()
    for name, value in soup.items():
        if value.is_floating_point():
            assert torch.allclose(value, midpoint[name], atol=1e-6), name  # two models: the midpoint
    shared = soup["bert.embeddings.word_embeddings.weight"]
    assert shared.numpy().tobytes() == a.state_dict()["bert.embeddings.word_embeddings.weight"].numpy().tobytes()
    three = average([a, b_shared, b_shared]).state_dict()["classifier.weight"]
    assert torch.allclose(
        three, (a.state_dict()["classifier.weight"] + 2 * b.state_dict()["classifier.weight"]) / 3, atol=1e-6
    )
    with pytest.raises(UserError, match="at least two models"):
        average([a])
