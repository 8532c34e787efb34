"""Fine-tuning a 2-class sequence classifier, shared by Model A and Model B (and the cross-validation stage).

The epochs run in `cloud.training.training_loop`, the loop distillation uses too; this module supplies
what is particular to fine-tuning: the weighted cross-entropy and the validation macro-F1 that picks
the best epoch.

Tokenisation goes through `shared.text.load_tokenizer` on the model's own tokenizer.json, the same
function the device runtime uses, so the ids a model is trained on are the ids it is served.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cloud.training.encoder_anatomy import freeze_lower_layers
from cloud.training.training_loop import set_seed, train
from shared.labels import LABEL_NAMES
from shared.probabilities import softmax
from shared.text import load_tokenizer, model_input


@dataclass
class FineTuneConfig:
    base: str = "minilm"
    max_length: int = 256
    epochs: int = 6
    batch_size: int = 16
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 2025
    threads: int | None = None
    preprocessing: str = "clean"  # shared.text.model_input style; recorded for the device
    # Windows of max_length read per posting when the model is scored and served (shared.reading).
    # Training, and the per-epoch validation that picks the best epoch, read the first window only.
    windows: int = 1
    freeze_embeddings: bool = True  # 12M of MiniLM's 22M params; too few rows to move them usefully
    freeze_layers: int = 0  # lowest encoder layers kept frozen: their backward pass is skipped
    progress: bool = True

    @classmethod
    def from_params(cls, params: dict, **overrides) -> FineTuneConfig:
        train, model = params.get("train", {}), params.get("model", {})
        values = dict(
            base=model.get("base", "minilm"),
            max_length=model.get("max_length", 256),
            epochs=train.get("epochs", 6),
            batch_size=train.get("batch_size", 16),
            learning_rate=float(train.get("learning_rate", 5e-5)),
            weight_decay=float(train.get("weight_decay", 0.01)),
            warmup_ratio=float(train.get("warmup_ratio", 0.1)),
            seed=train.get("seed", 2025),
            freeze_embeddings=bool(train.get("freeze_embeddings", True)),
            freeze_layers=int(train.get("freeze_layers", 0)),
            preprocessing=model.get("preprocessing", "clean"),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class FineTuneResult:
    model: object  # transformers PreTrainedModel, best epoch by validation macro-F1
    hf_tokenizer: object  # the fast tokenizer, saved next to the model
    tokenizer_json: Path  # path of the tokenizer.json used for training
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


def encode(tokenizer, texts: list[str]):
    """Token ids + attention mask tensors, padded to the longest text in `texts`."""
    import torch

    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return ids, mask


def encode_ids(windows: list[tuple[int, ...]], pad_id: int = 0):
    """`encode` for windows already tokenized (`shared.reading.window_ids`): padded to the longest."""
    import torch

    width = max((len(w) for w in windows), default=0)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        ids[row, : len(window)] = torch.tensor(window, dtype=torch.long)
        mask[row, : len(window)] = 1
    return ids, mask


def read_logits(tokenizer, inputs: list[str], windows: int, logits_of) -> np.ndarray:
    """Per-posting logits of model-input texts, each read in up to `windows` windows (`shared.reading`).

    `logits_of(items, encode_batch)` returns one row of logits per item: the plain model or a prefix
    cache. With one window the items are the texts themselves (as A was always scored); with more they
    are the windows' token ids, and a posting's logits are the mean of its windows'."""
    if windows == 1:
        return logits_of(inputs, lambda batch: encode(tokenizer, batch))
    from shared.reading import average_windows, window_encodings, window_ids

    flat, owners = window_encodings(tokenizer.encode_batch(inputs), windows)
    pad_id = (tokenizer.padding or {}).get("pad_id", 0)
    keys = [window_ids(w) for w in flat]
    return average_windows(logits_of(keys, lambda batch: encode_ids(batch, pad_id)), owners, len(inputs))


def predict_proba(model, tokenizer, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """Softmax probabilities, shape (n, 2)."""
    return softmax(predict_logits(model, tokenizer, texts, batch_size, progress))


def predict_logits(model, tokenizer, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """Raw logits (n, 2) in float64: what temperature scaling and distillation need. Batches are
    length-sorted to cut padding work."""
    return batched_logits(model, texts, lambda batch: encode(tokenizer, batch), batch_size, progress)


def batched_logits(model, items: list, encode_batch, batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """`model`'s logits for texts or token-id windows (`encode_batch` turns a list of them into tensors)."""
    import torch

    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    out = np.zeros((len(items), model.config.num_labels), dtype=np.float64)
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="predict", disable=not progress, leave=False):
            idx = order[start : start + batch_size]
            ids, mask = encode_batch([items[i] for i in idx])
            out[idx] = model(input_ids=ids, attention_mask=mask).logits.double().numpy()
    return out


def fine_tune(
    train_texts: list[str],
    train_labels: list[int],
    val_texts: list[str],
    val_labels: list[int],
    config: FineTuneConfig,
    sample_weights: list[float] | None = None,
    prefix_cache=None,
) -> FineTuneResult:
    """Fine-tune `config.base` as a 2-class sequence classifier; keep the best epoch on validation
    (or the last epoch when `val_texts` is empty).

    `prefix_cache` (a `frozen_prefix.PrefixCache`) shares the frozen bottom's outputs between
    fine-tunes that start from the same weights (Model B's arms): texts it holds are not recomputed.

    Texts are raw or cleaned postings; `config.preprocessing` turns them into model input here.
    """
    import torch
    from sklearn.metrics import f1_score

    from cloud.training.base_models import load_pretrained_classifier

    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    model, hf_tokenizer = load_pretrained_classifier(config.base, 2, dict(LABEL_NAMES))
    tokenizer_dir = Path(tempfile.mkdtemp(prefix="careeredge-tok-"))
    hf_tokenizer.save_pretrained(tokenizer_dir)
    tokenizer_json = tokenizer_dir / "tokenizer.json"
    tokenizer = load_tokenizer(tokenizer_json, config.max_length)
    train_texts = [model_input(t, config.preprocessing) for t in train_texts]
    val_texts = [model_input(t, config.preprocessing) for t in val_texts]

    freeze_lower_layers(model, config.freeze_embeddings, config.freeze_layers)
    labels = torch.tensor(train_labels, dtype=torch.long)
    weights = torch.tensor(sample_weights if sample_weights is not None else [1.0] * len(train_labels))

    prefix = None
    if config.freeze_layers > 0:
        from cloud.training.frozen_prefix import FrozenPrefix

        prefix = FrozenPrefix(model, config.freeze_layers)
        prefix.precompute(lambda batch: encode(tokenizer, batch), train_texts + val_texts, cache=prefix_cache)
    all_texts, val_offset = train_texts + val_texts, len(train_texts)
    top_only = prefix.top_only if prefix is not None else contextlib.nullcontext

    def batch_logits(indices: list[int]):
        """Logits for rows of train_texts + val_texts (cached bottom when layers are frozen)."""
        if prefix is not None:
            return prefix.logits(indices)
        ids, mask = encode(tokenizer, [all_texts[i] for i in indices])
        return model(input_ids=ids, attention_mask=mask).logits

    def weighted_cross_entropy(idx: list[int]):
        per_example = torch.nn.functional.cross_entropy(batch_logits(idx), labels[idx], reduction="none")
        return (per_example * weights[idx]).sum() / weights[idx].sum()

    def validate(epoch: int) -> tuple[dict, float]:
        if not val_texts:  # no validation split (e.g. inside a CV fold): the last epoch is the model
            return {}, float(epoch)
        model.eval()
        with top_only(), torch.inference_mode():
            val_rows = list(range(val_offset, val_offset + len(val_texts)))
            val_pred = (
                torch.cat([batch_logits(val_rows[i : i + 32]) for i in range(0, len(val_rows), 32)])
                .argmax(dim=1)
                .numpy()
            )
        val_f1 = float(f1_score(val_labels, val_pred, average="macro"))
        return {"val_macro_f1": val_f1, "val_accuracy": float((val_pred == np.asarray(val_labels)).mean())}, val_f1

    fit = train(
        model,
        len(train_texts),
        config,
        weighted_cross_entropy,
        validate,
        desc=f"fine-tune {Path(str(config.base)).name}",
        batch_context=top_only,
    )
    return FineTuneResult(
        model=model,
        hf_tokenizer=hf_tokenizer,
        tokenizer_json=tokenizer_json,
        history=fit.history,
        best_epoch=fit.best_epoch,
    )


@dataclass
class TrainedClassifier:
    """A saved classifier ready to score raw postings exactly as it was trained."""

    model: object
    tokenizer: object
    preprocessing: str
    max_length: int
    windows: int = 1  # windows of max_length read per posting (shared.reading)

    def predict_proba(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        return softmax(self.predict_logits(texts, batch_size, progress))

    def predict_logits(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        inputs = [model_input(t, self.preprocessing) for t in texts]
        return read_logits(
            self.tokenizer,
            inputs,
            self.windows,
            lambda items, encode_batch: batched_logits(self.model, items, encode_batch, batch_size, progress),
        )
