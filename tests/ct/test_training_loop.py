"""The one training loop behind fine-tuning and distillation (`cloud.training.training_loop`), checked
against the algorithm it documents, written out here in plain torch: the same seed must give the same
weights bit for bit. Tiny real BERT (2 blocks, 32 wide), with dropout on."""

from __future__ import annotations

import copy

import pytest

from cloud.training.distill import DistillConfig

pytestmark = pytest.mark.slow

ROWS = 20
# Distillation's config as the loop's settings (fine-tuning's has the same fields); weight_decay 0.01.
SETTINGS = DistillConfig(epochs=3, batch_size=8, learning_rate=1e-3, warmup_ratio=0.2, seed=7, progress=False)


@pytest.fixture(scope="module")
def tiny():
    import torch

    from tests.support.tiny_model import tiny_bert

    model = tiny_bert(vocab_size=50)
    model.bert.embeddings.requires_grad_(False)  # frozen parameters must be left out of the optimizer
    ids = torch.randint(1, 50, (ROWS, 12), generator=torch.Generator().manual_seed(1))
    labels = torch.arange(ROWS) % 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only waits on thread hand-offs
    yield model, ids, labels
    torch.set_num_threads(threads)


def loss_of(model, ids, labels, rows):
    """Summed cross-entropy: its gradients are large enough that clipping at 1.0 takes effect."""
    import torch

    return torch.nn.functional.cross_entropy(model(input_ids=ids[rows]).logits, labels[rows], reduction="sum")


def reference_training(model, ids, labels, best_epoch_of):
    """The documented algorithm, step by step; `best_epoch_of(epoch_states)` says which epoch to keep."""
    import math

    import torch

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in trainable if not any(k in n for k in no_decay)],
                "weight_decay": SETTINGS.weight_decay,
            },
            {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ],
        lr=SETTINGS.learning_rate,
    )
    total = math.ceil(ROWS / SETTINGS.batch_size) * SETTINGS.epochs
    warmup = int(SETTINGS.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: step / max(1, warmup) if step < warmup else max(0.0, (total - step) / max(1, total - warmup)),
    )
    order = torch.Generator().manual_seed(SETTINGS.seed)
    states = []
    for _ in range(SETTINGS.epochs):
        model.train()
        permutation = torch.randperm(ROWS, generator=order).tolist()
        for start in range(0, ROWS, SETTINGS.batch_size):
            loss = loss_of(model, ids, labels, permutation[start : start + SETTINGS.batch_size])
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        states.append({n: p.detach().clone() for n, p in trainable})
    with torch.no_grad():
        for name, parameter in trainable:
            parameter.copy_(states[best_epoch_of(states) - 1][name])
    model.eval()


def run_loop(model, ids, labels, key_of_epoch):
    from cloud.training.training_loop import train

    return train(
        model,
        ROWS,
        SETTINGS,
        lambda rows: loss_of(model, ids, labels, rows),
        lambda epoch: ({"val_key": key_of_epoch(epoch)}, key_of_epoch(epoch)),
        desc="test",
    )


def assert_same_weights(a, b):
    import torch

    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize(
    ("key_of_epoch", "expected_best"),
    [
        (lambda epoch: -abs(epoch - 2), 2),  # a middle epoch wins: its weights are restored
        (lambda epoch: 0.0, 1),  # equal keys: the first epoch stays
        (lambda epoch: float(epoch), SETTINGS.epochs),  # the last epoch (no validation split)
    ],
)
def test_the_loop_is_the_documented_algorithm_bit_for_bit(tiny, key_of_epoch, expected_best):
    import torch

    model, ids, labels = tiny
    looped, reference = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(SETTINGS.seed)  # dropout draws from the global generator, in the same order in both
    fit = run_loop(looped, ids, labels, key_of_epoch)
    torch.manual_seed(SETTINGS.seed)
    reference_training(reference, ids, labels, lambda states: expected_best)
    assert fit.best_epoch == expected_best
    assert [r["epoch"] for r in fit.history] == list(range(1, SETTINGS.epochs + 1))
    assert all(r["train_loss"] > 0 for r in fit.history)
    assert not looped.training
    assert_same_weights(looped, reference)
    assert not torch.equal(looped.classifier.weight, model.classifier.weight)  # it did train
    assert torch.equal(looped.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def test_another_seed_gives_other_weights(tiny):
    import torch

    model, ids, labels = tiny
    first, second = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(SETTINGS.seed)
    run_loop(first, ids, labels, float)
    torch.manual_seed(SETTINGS.seed + 1)  # other dropout masks, same batch order
    run_loop(second, ids, labels, float)
    assert not torch.equal(first.classifier.weight, second.classifier.weight)
