"""The one training loop behind fine-tuning (`finetune.fine_tune`) and distillation (`distill.distill`).

Both train a transformer classifier the same way and differ only in what they minimise and how they
judge an epoch, so those two are what a caller supplies:

* `batch_loss(rows)`: the loss of one batch of row indices (a scalar tensor; cross-entropy against the
  labels for fine-tuning, mean squared error against the teacher's logits for distillation);
* `validate(epoch)`: after each epoch, the figures to record and a key to rank epochs by (higher wins;
  the first epoch of equal keys is kept).

The loop owns the rest: AdamW over the trainable parameters (no decay on biases and LayerNorm), a
linear warm-up and decay, gradient clipping at 1.0, seeded shuffled batches, a progress bar, and
restoring the best epoch's weights at the end. The order of every random draw is fixed (the batch
order comes from its own generator seeded with `seed`; dropout draws from torch's global generator,
seeded by `set_seed`), so the same seed gives the same weights bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm


class LoopSettings(Protocol):
    """What the loop reads from a training config (`FineTuneConfig` and `DistillConfig` both have it)."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    seed: int
    progress: bool


@dataclass
class Fit:
    history: list[dict] = field(default_factory=list)  # one record per epoch: loss and validation figures
    best_epoch: int = 0  # the epoch whose weights the model holds afterwards (1-based)


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (weight init, dropout)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Optimization:
    """AdamW over a model's trainable parameters (no decay on biases and LayerNorm), linear warm-up and
    decay, gradient clipping at 1.0."""

    trainable: list  # (name, parameter) pairs that get gradients
    optimizer: object
    scheduler: object

    @classmethod
    def for_model(
        cls, model, learning_rate: float, weight_decay: float, warmup_ratio: float, total_steps: int
    ) -> Optimization:
        import torch
        from transformers import get_linear_schedule_with_warmup

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in trainable if not any(k in n for k in no_decay)], "weight_decay": weight_decay},
            {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=learning_rate)
        return cls(
            trainable,
            optimizer,
            get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps),
        )

    def step(self, loss) -> float:
        import torch

        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in self.trainable], 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        return loss.item()

    def snapshot(self) -> dict:
        # by parameter, not state_dict(): inside FrozenPrefix.top_only() the module tree is swapped
        return {name: p.detach().clone() for name, p in self.trainable}

    def restore(self, state: dict) -> None:
        import torch

        with torch.no_grad():
            for name, parameter in self.trainable:
                parameter.copy_(state[name])


def shuffled_batches(count: int, batch_size: int, generator) -> list[list[int]]:
    """One epoch's batches of row indices, in the order `generator` draws."""
    import torch

    permutation = torch.randperm(count, generator=generator).tolist()
    return [permutation[start : start + batch_size] for start in range(0, count, batch_size)]


def train(
    model,
    rows: int,
    settings: LoopSettings,
    batch_loss: Callable[[list[int]], Any],
    validate: Callable[[int], tuple[dict, Any]],
    *,
    desc: str,
    loss_name: str = "train_loss",
    batch_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Fit:
    """Train `model` for `settings.epochs` epochs over `rows` rows; the model ends in eval mode holding
    its best epoch's weights.

    `batch_context()` is entered around each epoch's batches (e.g. `FrozenPrefix.top_only`, which runs
    only the trainable top on cached states); `validate` runs outside it, on the whole model."""
    import torch

    total_steps = math.ceil(rows / settings.batch_size) * settings.epochs
    optimization = Optimization.for_model(
        model, settings.learning_rate, settings.weight_decay, settings.warmup_ratio, total_steps
    )
    generator = torch.Generator().manual_seed(settings.seed)
    fit, best_key, best_state = Fit(), None, None
    bar = tqdm(total=total_steps, desc=desc, disable=not settings.progress)
    for epoch in range(1, settings.epochs + 1):
        model.train()
        epoch_loss = 0.0
        with batch_context():
            for idx in shuffled_batches(rows, settings.batch_size, generator):
                loss = optimization.step(batch_loss(idx))
                epoch_loss += loss * len(idx)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")
        scores, key = validate(epoch)
        fit.history.append({"epoch": epoch, loss_name: epoch_loss / rows, **scores})
        if best_key is None or key > best_key:
            best_key, fit.best_epoch, best_state = key, epoch, optimization.snapshot()
    bar.close()
    optimization.restore(best_state)
    model.eval()
    return fit
