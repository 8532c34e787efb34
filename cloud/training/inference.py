"""Load a trained HF classifier directory for batch scoring on the trainer (A or B)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cloud.training.finetune import predict_logits
from shared.errors import UserError
from shared.text import load_tokenizer


class TrainedClassifier:
    def __init__(self, hf_dir: str | Path, max_length: int, threads: int | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification

        hf_dir = Path(hf_dir)
        for required in ("config.json", "tokenizer.json"):
            if not (hf_dir / required).is_file():
                raise UserError(f"{hf_dir}: no {required}; is this a trained model's hf/ directory?")
        if threads:
            torch.set_num_threads(threads)
        self.hf_dir = hf_dir
        self.model = AutoModelForSequenceClassification.from_pretrained(str(hf_dir)).eval()
        self.tokenizer = load_tokenizer(hf_dir / "tokenizer.json", max_length)

    def logits(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Texts must already be `shared.text.clean_text`-ed (postings and split CSVs are)."""
        if not texts:
            return np.zeros((0, 2))
        return predict_logits(self.model, self.tokenizer, list(texts), batch_size)
