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

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cloud.training.encoder_anatomy import encoder_layers


class _PrecomputedEmbeddings(nn.Module):
    """Stands in for the embedding module and returns the cached block-k output of the current batch."""

    def __init__(self):
        super().__init__()
        self.current: torch.Tensor | None = None

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.current


class FrozenPrefix:
    def __init__(self, model, frozen_layers: int):
        self.model = model
        self.base = model.base_model
        self.layers = encoder_layers(model)
        self.frozen_layers = frozen_layers
        self.hidden: list[torch.Tensor] = []
        self._stand_in = _PrecomputedEmbeddings()

    def precompute(
        self, encode_batch, texts: list[str], batch_size: int = 32, cache: PrefixCache | None = None
    ) -> None:
        """Cache, per text, the output of the last frozen block (its own length, no padding).

        With a shared `cache` (same frozen bottom), texts it already holds are not recomputed."""
        if cache is None:
            self.hidden = self.compute_states(encode_batch, texts, batch_size)
            return
        cache.ensure(self, encode_batch, texts, batch_size)
        self.hidden = cache.states(texts)

    @torch.inference_mode()
    def compute_states(
        self, encode_batch, texts: list[str], batch_size: int = 32, progress: bool = False
    ) -> list[torch.Tensor]:
        """The last frozen block's output for `texts`, in order. Batches are length-sorted (less padding)."""
        self.model.eval()
        bottom = list(self.layers)[: self.frozen_layers]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        states: list[torch.Tensor | None] = [None] * len(texts)
        batches = range(0, len(order), batch_size)
        with self._swap_layers(bottom):
            for start in tqdm(batches, desc=f"frozen layers 1-{self.frozen_layers}", disable=not progress, leave=False):
                idx = order[start : start + batch_size]
                ids, mask = encode_batch([texts[i] for i in idx])
                hidden = self.base(input_ids=ids, attention_mask=mask).last_hidden_state
                for i, h, n in zip(idx, hidden, mask.sum(dim=1).tolist()):
                    states[i] = h[:n].clone()
        return states

    @torch.inference_mode()
    def advance(
        self, states: list[torch.Tensor], from_layers: int, batch_size: int = 32, progress: bool = False
    ) -> list[torch.Tensor]:
        """This prefix's states from the cached outputs of a shallower one (`from_layers` < frozen_layers):
        only blocks from_layers+1 .. frozen_layers run."""
        if not 0 < from_layers <= self.frozen_layers:
            raise ValueError(f"cannot advance states of {from_layers} layers to {self.frozen_layers}")
        self.model.eval()
        blocks = list(self.layers)[from_layers : self.frozen_layers]
        order = sorted(range(len(states)), key=lambda i: len(states[i]))
        out: list[torch.Tensor | None] = [None] * len(states)
        with self._from_cached(blocks, states):
            for start in tqdm(
                range(0, len(order), batch_size),
                desc=f"frozen layers {from_layers + 1}-{self.frozen_layers}",
                disable=not progress,
                leave=False,
            ):
                idx = order[start : start + batch_size]
                padded, mask = self.batch(idx)
                self._stand_in.current = padded
                hidden = self.base(
                    input_ids=torch.zeros(mask.shape, dtype=torch.long), attention_mask=mask
                ).last_hidden_state
                for i, h, n in zip(idx, hidden, mask.sum(dim=1).tolist()):
                    out[i] = h[:n].clone()
        return out

    def fingerprint(self) -> str:
        """sha256 over the frozen bottom's weights (embeddings + the lowest `frozen_layers` blocks)."""
        digest = hashlib.sha256(f"layers={self.frozen_layers}".encode())
        modules = [self.base.embeddings] + list(self.layers)[: self.frozen_layers]
        for module in modules:
            for name, tensor in sorted(module.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
        return digest.hexdigest()

    @torch.inference_mode()
    def predict_logits(self, states: list[torch.Tensor], batch_size: int = 32) -> np.ndarray:
        """Logits (n, labels) of the top blocks + head on cached states (length-sorted batches)."""
        self.model.eval()
        order = sorted(range(len(states)), key=lambda i: len(states[i]))
        out = np.zeros((len(states), self.model.config.num_labels), dtype=np.float64)
        with self._from_cached(list(self.layers)[self.frozen_layers :], states):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self.logits(idx).double().numpy()
        return out

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
        with self._from_cached(list(self.layers)[self.frozen_layers :]):
            yield

    @contextmanager
    def _from_cached(self, blocks: list[nn.Module], states: list[torch.Tensor] | None = None) -> Iterator[None]:
        """Run only `blocks`, fed from cached states instead of the embeddings (`states`, when given,
        replace this prefix's own cache for the duration)."""
        original_embeddings, saved = self.base.embeddings, self.hidden
        self.base.embeddings = self._stand_in
        if states is not None:
            self.hidden = states
        try:
            with self._swap_layers(blocks):
                yield
        finally:
            self.base.embeddings = original_embeddings
            self._stand_in.current = None
            self.hidden = saved

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


class PrefixCache:
    """Frozen-bottom outputs shared by every model that has the same frozen bottom.

    Model B's candidates all start from Model A with A's bottom frozen, so the embeddings and the
    lowest k blocks are bit-identical across A and every B arm: the bottom runs once per text for
    all of them (train-b's arms, evaluate-b's A-vs-B). Keys are model-input texts; the bottom's
    weight fingerprint is checked so a model with a different bottom can never read these states.
    """

    def __init__(self, progress: bool = True):
        self.progress = progress
        self.frozen_layers: int | None = None
        self.fingerprint: str | None = None
        self._states: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, text: str) -> bool:
        return text in self._states

    def check(self, prefix: FrozenPrefix) -> None:
        fingerprint = prefix.fingerprint()
        if self.fingerprint is None:
            self.frozen_layers, self.fingerprint = prefix.frozen_layers, fingerprint
        elif (prefix.frozen_layers, fingerprint) != (self.frozen_layers, self.fingerprint):
            raise ValueError("this model's frozen bottom differs from the one the prefix cache was built with")

    def ensure(self, prefix: FrozenPrefix, encode_batch: Callable, texts: list[str], batch_size: int = 32) -> int:
        """Compute the states of the texts not cached yet; returns how many were computed."""
        self.check(prefix)
        missing = list(dict.fromkeys(t for t in texts if t not in self._states))
        if missing:
            for text, state in zip(missing, prefix.compute_states(encode_batch, missing, batch_size, self.progress)):
                self._states[text] = state
        return len(missing)

    def states(self, texts: list[str]) -> list[torch.Tensor]:
        return [self._states[t] for t in texts]

    def logits(self, prefix: FrozenPrefix, encode_batch: Callable, texts: list[str]) -> np.ndarray:
        """`prefix`'s model's logits for model-input `texts`, the bottom taken from (or added to) this cache."""
        self.ensure(prefix, encode_batch, texts)
        return prefix.predict_logits(self.states(texts))

    def deepen(self, prefix: FrozenPrefix) -> PrefixCache:
        """A cache for a deeper frozen bottom (same weights below), built from this one's states by
        running only the extra blocks: settings freezing more layers need not rerun the whole bottom."""
        if self.fingerprint is None or prefix.frozen_layers <= (self.frozen_layers or 0):
            raise ValueError("deepen needs a filled cache and a prefix with more frozen layers")
        if FrozenPrefix(prefix.model, self.frozen_layers).fingerprint() != self.fingerprint:
            raise ValueError("this model's frozen bottom differs from the one the prefix cache was built with")
        deeper = PrefixCache(self.progress)
        deeper.check(prefix)
        texts = list(self._states)
        deeper._states = dict(
            zip(texts, prefix.advance(self.states(texts), self.frozen_layers, progress=self.progress))
        )
        return deeper


def shares_bottom(model_a, model_b, frozen_layers: int) -> bool:
    """True when two models' embeddings and lowest `frozen_layers` blocks are identical."""
    return FrozenPrefix(model_a, frozen_layers).fingerprint() == FrozenPrefix(model_b, frozen_layers).fingerprint()
