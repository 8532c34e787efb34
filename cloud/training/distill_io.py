"""What distillation reads and writes: the transfer set in, the student's model directory out.

The directory has the layout every later step reads (`hf/`, `train_log.json`, `<name>.pth`,
MODEL_CARD.md); its `distillation` record is what the export checks the INT8 student against.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from cloud.artifacts import atomic_directory, read_json, write_json_atomic
from cloud.training.distill import DistillConfig, Outcome
from shared.files import sha256_file

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")


def transfer_texts(splits: Path, stream=None) -> tuple[list[str], dict]:
    """2025 train texts + the 2026 pseudo-label pool of `stream` (descriptions, as A sees them)."""
    from cloud.data.splits import read_split

    texts, _ = read_split(splits / "train.csv")
    counts = {"train_2025": len(texts), "pool_2026": 0}
    if stream is not None:
        texts = texts + [p.description for p in stream.pool]
        counts["pool_2026"] = len(stream.pool)
    return texts, counts


def save_student(
    outcome: Outcome,
    teacher_dir: Path,
    out_dir: Path,
    name: str,
    config: DistillConfig,
    teacher_config: dict,
    transfer_counts: dict,
    report: dict,
    test_csv: Path,
    init: str | None = None,
) -> None:
    """The layout every later step reads (`hf/`, `train_log.json`, `<name>.pth`, MODEL_CARD.md)."""
    import torch

    with atomic_directory(out_dir) as staging:
        outcome.student.save_pretrained(staging / "hf", safe_serialization=True)
        for source in (teacher_dir / "hf").iterdir():  # tokenizer files: the student reads as A does
            if source.is_file() and source.name not in WEIGHT_FILES:
                shutil.copyfile(source, staging / "hf" / source.name)
        torch.save(outcome.student.state_dict(), staging / f"{name}.pth")
        distillation = {
            "teacher": teacher_dir.name,
            **({"init": init} if init else {}),
            "layers": list(config.layers),
            "max_length": outcome.reader.max_length,
            "teacher_max_length": teacher_config["max_length"],
            **transfer_counts,
            **report,
            "test_split_sha256": sha256_file(test_csv),
        }  # the export checks it with the same function
        log = {
            "name": name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            # preprocessing (and windows) are the teacher's, max_length the student's window: the export
            # and the device read them here
            "config": {
                **teacher_config,
                "max_length": outcome.reader.max_length,
                "distill": {k: v for k, v in asdict(config).items() if k not in ("threads", "progress")},
            },
            "distillation": distillation,
            "best_epoch": outcome.best_epoch,
            "history": outcome.history,
        }
        write_json_atomic(staging / "train_log.json", log)
        (staging / "MODEL_CARD.md").write_text(_model_card(name, log), encoding="utf-8")


def _model_card(name: str, log: dict) -> str:
    d = log["distillation"]
    start = (
        f"starting from {d['init']} and trained"
        if d.get("init")
        else f"{len(d['layers'])} of {d['teacher']}'s blocks ({d['layers']}), trained"
    )
    stream = (
        f"\n- 2026 evaluation split ({d['eval_2026_postings']} postings): accuracy "
        f"{d['eval_2026_student_accuracy']:.4f} vs {d['teacher']}'s {d['eval_2026_teacher_accuracy']:.4f} "
        f"and {d['init']}'s {d['eval_2026_replaced_accuracy']:.4f}."
        if "eval_2026_postings" in d
        else ""
    )
    return f"""# {name}

The device's copy of {d["teacher"]}: {start} to reproduce {d["teacher"]}'s logits
(`cloud/training/distill.py`).

- Transfer set: {d["train_2025"]} 2025 train postings + {d["pool_2026"]} postings of the 2026 pseudo-label pool,
  labelled by {d["teacher"]}'s logits (no human labels).
- Best epoch {log["best_epoch"]} by agreement with {d["teacher"]} on the 2025 validation split.
- 2025 test split ({d["test_postings"]} postings): accuracy {d["student_accuracy"]:.4f} vs {d["teacher"]}'s
  {d["teacher_accuracy"]:.4f}; decisions agree on {d["test_agreement"]:.2%}.{stream}
- Weights: `hf/model.safetensors`; `{name}.pth` is a plain state_dict (`torch.load(..., weights_only=True)`).
"""


def read_log(model_dir: Path) -> dict:
    return read_json(model_dir / "train_log.json", f"{model_dir} is not a trained model directory")
