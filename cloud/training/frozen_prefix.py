"""Run the frozen bottom of the encoder once, then train only the top.

With `freeze_layers = k`, the embeddings and the lowest k transformer blocks never change during
fine-tuning, so their output for a given text never changes either. Computing it once per text and
feeding it straight to block k+1 removes the bottom of the network from every training step: on a
2-core CPU that is what makes several epochs of MiniLM at 256 tokens fit the pipeline's time budget.

The swap is done on the live model and undone afterwards, so the saved model is the ordinary full
Hugging Face model: nothing about the export or the device changes. One difference from training the
full stack with frozen weights: the cached blocks run without dropout (eval mode).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class _PrecomputedEmbeddings(nn.Module):
    """Stands in for the embedding module and returns the cached block-k output of the current batch."""

    def __init__(self):
        super().__init__()
        self.current: torch.Tensor | None = None

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.current


class FrozenPrefix:
    def __init__(self, model, frozen_layers: int):
        from cloud.training.finetune import encoder_layers

        self.model = model
        self.base = model.base_model
        self.layers = encoder_layers(model)
        self.frozen_layers = frozen_layers
        self.hidden: list[torch.Tensor] = []
        self._stand_in = _PrecomputedEmbeddings()

    @torch.inference_mode()
    def precompute(self, encode_batch, texts: list[str], batch_size: int = 32) -> None:
        """Cache, per text, the output of the last frozen block (its own length, no padding)."""
        self.model.eval()
        bottom = list(self.layers)[: self.frozen_layers]
        with self._swap_layers(bottom):
            for start in range(0, len(texts), batch_size):
                ids, mask = encode_batch(texts[start:start + batch_size])
                hidden = self.base(input_ids=ids, attention_mask=mask).last_hidden_state
                lengths = mask.sum(dim=1).tolist()
                self.hidden.extend(h[:n].clone() for h, n in zip(hidden, lengths))

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded cached states and their attention mask for the rows `indices`."""
        states = [self.hidden[i] for i in indices]
        padded = nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = torch.zeros(padded.shape[:2], dtype=torch.long)
        for row, state in enumerate(states):
            mask[row, : len(state)] = 1
        return padded, mask

    def logits(self, indices: list[int]) -> torch.Tensor:
        """Forward the top blocks + head for cached rows (call inside `top_only()`)."""
        states, mask = self.batch(indices)
        self._stand_in.current = states
        dummy_ids = torch.zeros(mask.shape, dtype=torch.long)  # only its shape is read; embeddings are stood in
        return self.model(input_ids=dummy_ids, attention_mask=mask).logits

    @contextmanager
    def top_only(self) -> Iterator[None]:
        top = list(self.layers)[self.frozen_layers:]
        original_embeddings = self.base.embeddings
        self.base.embeddings = self._stand_in
        try:
            with self._swap_layers(top):
                yield
        finally:
            self.base.embeddings = original_embeddings
            self._stand_in.current = None

    @contextmanager
    def _swap_layers(self, blocks: list[nn.Module]) -> Iterator[None]:
        container = self.layers
        original = list(container)
        container._modules.clear()
        for i, block in enumerate(blocks):
            container.add_module(str(i), block)
        try:
            yield
        finally:
            container._modules.clear()
            for i, block in enumerate(original):
                container.add_module(str(i), block)
