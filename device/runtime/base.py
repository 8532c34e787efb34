"""The inference backend interface every accelerator plugs into (Frigate-detector style).

A backend turns raw posting texts into `Prediction`s. The base class owns everything that must be
identical across backends: the same `shared.text.model_input` the trainer used (style from the manifest), the same tokenizer,
softmax, label names, batching. A subclass only maps token ids to logits.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shared.bundle import TOKENIZER_FILE, label_names, reading_windows
from shared.probabilities import softmax
from shared.reading import average_windows, window_encodings
from shared.text import load_tokenizer, model_input

DEFAULT_BATCH_SIZE = 16
# Tokenize only a whitespace-bounded prefix of this many characters per word piece of max_length
# first, doubling it while it is too short (see `InferenceBackend.encode`). 192 word pieces of the
# 2025 postings' model input took 1,015 characters at the median and 1,231 at most: 6 per piece covers
# 96 % of them in one go, and tokenizing costs in proportion to the characters.
PREFIX_CHARS_PER_TOKEN = 6


@dataclass
class Prediction:
    label: int
    label_name: str
    probabilities: list[float]
    model_version: str
    latency_ms: float

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def to_json(self, id: Any = None) -> dict[str, Any]:
        return {
            "id": id,
            "label": self.label,
            "label_name": self.label_name,
            "probabilities": [round(p, 6) for p in self.probabilities],
            "model_version": self.model_version,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass
class EncodedBatch:
    """Token ids of one batch, padded only to the longest row in it (not to max_length). A row is one
    window of a posting; `owners[row]` is its posting's index in the batch (`shared.reading`)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    owners: np.ndarray | None = None  # None: one row per posting, in order


class InferenceBackend(ABC):
    """Subclasses set `type_key` and implement `logits`. Construct through `device.runtime.load_backend`."""

    type_key: ClassVar[str]
    # Whether `logits` may run in several threads at once (the daemon's inference workers). False
    # unless a backend knows its runtime allows it: one accelerator, for one, runs one call at a time.
    concurrent_calls: ClassVar[bool] = False
    # Set when this backend serves because an accelerator could not (`device.runtime.load_backend`).
    fallback_reason: str | None = None

    def __init__(
        self,
        bundle_dir: str | Path,
        manifest: dict[str, Any],
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest
        self.threads = threads
        self.batch_size = max(1, int(batch_size))
        self.labels = label_names(manifest)
        self.max_length = int(manifest["max_length"])
        self.preprocessing = str(manifest.get("preprocessing", "clean"))
        self.windows = reading_windows(manifest)
        self.tokenizer = load_tokenizer(self.bundle_dir / TOKENIZER_FILE, self.max_length)
        self.tokenizer.no_padding()  # `encode` pads itself, to the longest text of each batch
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0

    @property
    def model_name(self) -> str:
        return str(self.manifest["name"])

    @property
    def model_version(self) -> str:
        """`name@version`: what answered, unambiguous across Model A and Model B bundles."""
        return f"{self.manifest['name']}@{self.manifest['version']}"

    @abstractmethod
    def logits(self, batch: EncodedBatch) -> np.ndarray:
        """Raw class scores, shape (batch, num_labels)."""

    def encode(self, cleaned_texts: Sequence[str]) -> EncodedBatch:
        """Each text's first `windows` windows of max_length word pieces, padded only to the longest row."""
        return self.pad(self.tokenize(cleaned_texts))

    def tokenize(self, cleaned_texts: Sequence[str]) -> list:
        """Each text's tokenizers `Encoding` (max_length word pieces, its overflow holding the next windows).

        A posting is ~5,000 characters but the model reads max_length word pieces (~1,000 characters) per
        window, and tokenizing the rest just to drop it cost more than the cleaning. So each text is first
        tokenized up to a whitespace near max_length * windows * PREFIX_CHARS_PER_TOKEN characters. If that
        prefix overflows its last window, its windows are exactly the full text's (every pre-tokenizer
        splits at whitespace, so no word piece before the cut changes); a prefix that does not overflow
        (long words) is tokenized again at twice the length, up to the whole text.
        """
        texts = list(cleaned_texts)
        encodings: list = [None] * len(texts)
        pending, limit = list(range(len(texts))), self.max_length * self.windows * PREFIX_CHARS_PER_TOKEN
        while pending:
            prefixes = [whitespace_prefix(texts[i], limit) for i in pending]
            short = []
            # encode_batch_fast: the same ids, masks and overflow as encode_batch, without the character
            # offsets the model never reads (a fifth of the tokenizing time on the 2025 postings).
            for i, prefix, encoding in zip(pending, prefixes, self.tokenizer.encode_batch_fast(prefixes)):
                encodings[i] = encoding
                if len(prefix) < len(texts[i]) and len(encoding.overflowing) < self.windows:
                    short.append(i)
            pending, limit = short, limit * 2
        return encodings

    def pad(self, encodings: Sequence) -> EncodedBatch:
        """Tokenized texts (`tokenize`) as one batch: their windows, padded to the longest row."""
        owners = None
        if self.windows > 1:
            encodings, owners = window_encodings(encodings, self.windows)
        width = max((len(e.ids) for e in encodings), default=0)
        batch = EncodedBatch(
            input_ids=np.full((len(encodings), width), self.pad_id, dtype=np.int64),
            attention_mask=np.zeros((len(encodings), width), dtype=np.int64),
            token_type_ids=np.zeros((len(encodings), width), dtype=np.int64),
            owners=owners,
        )
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            batch.input_ids[row, :length] = encoding.ids
            batch.attention_mask[row, :length] = encoding.attention_mask
            batch.token_type_ids[row, :length] = encoding.type_ids
        return batch

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify raw texts (turned into model input here with `shared.text.model_input`) in batches.

        Texts are sorted by length before batching so each batch pads to similar lengths, then the
        results are put back in input order. `latency_ms` is the batch's wall time divided by its
        size: the per-posting cost a user pays (for a single text it is the full latency).
        """
        return self.predict_model_inputs([model_input(t, self.preprocessing) for t in texts])

    def predict_model_inputs(self, cleaned: Sequence[str]) -> list[Prediction]:
        """`predict` for texts already through `model_input(text, self.preprocessing)`."""
        order = sorted(range(len(cleaned)), key=lambda i: len(cleaned[i]))
        return self._predict_batches(order, lambda indices: self.encode([cleaned[i] for i in indices]))

    def predict_tokenized(self, encodings: Sequence) -> list[Prediction]:
        """`predict` for texts already through `model_input` and `tokenize`: the daemon does both in its
        request threads, so that Python work overlaps the model instead of queueing in front of it, and
        its one inference thread only pads and runs the model. `latency_ms` is then the model's share."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        return self._predict_batches(order, lambda indices: self.pad([encodings[i] for i in indices]))

    def _predict_batches(self, order: list[int], batch_of) -> list[Prediction]:
        """Run `order` (indices sorted by length) in batches of `batch_size`; results in index order."""
        results: list[Prediction | None] = [None] * len(order)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            began = time.perf_counter()
            scores = self.posting_logits(batch_of(indices), len(indices))
            probabilities = softmax(scores)
            per_item_ms = (time.perf_counter() - began) * 1000 / len(indices)
            for index, row in zip(indices, probabilities):
                results[index] = self._prediction(row, per_item_ms)
        return results  # type: ignore[return-value]

    def posting_logits(self, batch: EncodedBatch, postings: int) -> np.ndarray:
        """One row of class scores per posting: the mean over its windows when it has several."""
        scores = self.logits(batch)
        return scores if batch.owners is None else average_windows(scores, batch.owners, postings)

    def _prediction(self, probabilities: np.ndarray, latency_ms: float) -> Prediction:
        label = int(np.argmax(probabilities))
        return Prediction(
            label=label,
            label_name=self.labels.get(label, str(label)),
            probabilities=[float(p) for p in probabilities],
            model_version=self.model_version,
            latency_ms=latency_ms,
        )

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract: CPU backends hold nothing
        """Release accelerator resources (no-op for CPU backends)."""


def whitespace_prefix(text: str, limit: int) -> str:
    """`text` cut at the last whitespace before `limit` characters (whole text if short or unbroken)."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
    return text[:cut] if cut > 0 else text
