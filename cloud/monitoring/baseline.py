"""The 2025 baseline: Model A's training split, projected once into monitoring features."""

from __future__ import annotations

import csv
from pathlib import Path

from shared.errors import UserError
from shared.monitoring.features import FeatureTable, project

BASELINE_NAME = "2025 train"


def baseline_table(splits: Path) -> FeatureTable:
    """The training split (`splits/train.csv`: id, title, text, label) as feature rows. Its class is the
    title label A learned from; it has no confidence (no model served it) and no timestamp."""
    path = Path(splits) / "train.csv"
    if not path.is_file():
        raise UserError(f"{path}: the 2025 training split is missing (run `careeredge-cloud prepare` and `label`)")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise UserError(f"{path}: the 2025 training split is empty")
    return project(
        [r["text"] for r in rows], [int(r["label"]) for r in rows], model="", source="kaggle_2025", timestamp=None
    )
