"""FP32 PyTorch inference with exactly the device's preprocessing (the parity and bench reference)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cloud.training.finetune import TrainedClassifier
from shared.text import load_tokenizer


def load_classifier(model_dir: Path):
    """The HF classifier with eager attention (what the ONNX exporter fuses best)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(model_dir), attn_implementation="eager").eval()


class TorchClassifier(TrainedClassifier):
    """The trainer's own scoring path (`TrainedClassifier`), with the `probabilities(texts)` method the
    benchmark's runtimes share."""

    def __init__(self, model, tokenizer_path: Path, max_length: int, preprocessing: str = "clean", windows: int = 1):
        super().__init__(model, load_tokenizer(tokenizer_path, max_length), preprocessing, max_length, windows)

    def probabilities(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        return self.predict_proba(list(texts), batch_size)
