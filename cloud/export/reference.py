"""FP32 PyTorch inference with exactly the device's preprocessing (the parity and bench reference)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cloud.export.onnx_export import model_input_names
from shared.text import load_tokenizer, model_input


def load_classifier(model_dir: Path):
    """The HF classifier with eager attention (what the ONNX exporter fuses best)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(model_dir), attn_implementation="eager").eval()


class TorchClassifier:
    """Batches cleaned, tokenized texts through a PyTorch model; returns softmax probabilities."""

    def __init__(self, model, tokenizer_path: Path, max_length: int, preprocessing: str = "clean"):
        self.model = model
        self.preprocessing = preprocessing
        self.tokenizer = load_tokenizer(tokenizer_path, max_length)
        self.accepts_token_types = "token_type_ids" in model_input_names(model)

    def probabilities(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            out.append(self.batch_probabilities(texts[start:start + batch_size]))
        return np.concatenate(out) if out else np.zeros((0, self.model.config.num_labels))

    @torch.inference_mode()
    def batch_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([model_input(t, self.preprocessing) for t in texts])
        inputs = {
            "input_ids": torch.tensor([e.ids for e in encodings]),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
        }
        if self.accepts_token_types:
            inputs["token_type_ids"] = torch.tensor([e.type_ids for e in encodings])
        return torch.softmax(self.model(**inputs).logits.float(), dim=-1).numpy()
