"""Writing a trained classifier to disk in the layout every later step reads.

<out>/hf/            Hugging Face directory (config.json, model.safetensors, tokenizer.json, ...)
<out>/<name>.pth     state_dict only, loadable with torch.load(..., weights_only=True)
<out>/MODEL_CARD.md  what it is, what it was trained on, how well it does
<out>/train_log.json per-epoch history and the config used
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from cloud.artifacts import atomic_directory, read_json, write_json_atomic
from cloud.training.finetune import FineTuneConfig, FineTuneResult
from shared.files import sha256_file


def save_classifier(
    result: FineTuneResult, config: FineTuneConfig, out_dir: Path, name: str, train_file: Path, description: str
) -> Path:
    import torch

    with atomic_directory(out_dir) as staging:
        result.model.save_pretrained(staging / "hf", safe_serialization=True)
        result.hf_tokenizer.save_pretrained(staging / "hf")
        torch.save(result.model.state_dict(), staging / f"{name}.pth")
        log = {
            "name": name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": asdict(config),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "training_data_sha256": sha256_file(train_file),
            "training_rows": _count_rows(train_file),
        }
        write_json_atomic(staging / "train_log.json", log)
        (staging / "MODEL_CARD.md").write_text(_model_card(name, description, log), encoding="utf-8")
    return out_dir


def load_classifier(model_dir: Path):
    """Load `<model_dir>/hf` + its train log as a TrainedClassifier (one clear error if absent)."""
    import json

    from transformers import AutoModelForSequenceClassification

    from cloud.training.finetune import TrainedClassifier
    from shared.errors import UserError
    from shared.text import load_tokenizer

    hf_dir, log_path = model_dir / "hf", model_dir / "train_log.json"
    if not (hf_dir / "config.json").is_file() or not log_path.is_file():
        raise UserError(f"no trained model in {model_dir} (expected hf/ and train_log.json; run the train step)")
    config = json.loads(log_path.read_text(encoding="utf-8"))["config"]
    model = AutoModelForSequenceClassification.from_pretrained(hf_dir, local_files_only=True)
    tokenizer = load_tokenizer(hf_dir / "tokenizer.json", config["max_length"])
    return TrainedClassifier(
        model, tokenizer, config.get("preprocessing", "clean"), config["max_length"], int(config.get("windows", 1))
    )


def recorded_config(model_dir: Path, missing_hint: str) -> dict:
    """The config a trained model directory's train_log.json records (base, preprocessing, max_length,
    windows, ...); `missing_hint` says what writes it when it is missing."""
    return read_json(model_dir / "train_log.json", missing_hint).get("config", {})


def load_state_dict(path: Path) -> dict:
    """The only way this project reads a .pth: tensors only, no pickled code."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _count_rows(path: Path) -> int:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _model_card(name: str, description: str, log: dict) -> str:
    best = log["history"][log["best_epoch"] - 1] if log["history"] else {}
    cfg = log["config"]
    return f"""# {name}

{description}

- Task: job posting description -> 0 Software Engineering / 1 Data Science (labels from the title taxonomy
  in `shared/labels.py`; the title itself is not part of the input).
- Base encoder: `{cfg["base"]}`, max_length {cfg["max_length"]} tokens (head of the cleaned description).
- Training: {cfg["epochs"]} epochs, batch {cfg["batch_size"]}, lr {cfg["learning_rate"]}, seed {cfg["seed"]};
  best epoch {log["best_epoch"]} by validation macro-F1 ({best.get("val_macro_f1", float("nan")):.3f}).
- Training data: {log["training_rows"]} rows, sha256 `{log["training_data_sha256"]}`.
- Test metrics: see `metrics.json` (written by `careeredge-cloud evaluate`).
- Weights: `hf/model.safetensors`; `{name}.pth` is a plain state_dict (`torch.load(..., weights_only=True)`).
- Limits: trained on ~430 US Indeed postings from June 2025 (search "Data Scientist"); expect drift on newer
  stacks and other markets. This is what Model B exists to measure.
"""
