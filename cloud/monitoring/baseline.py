"""The 2025 baseline: Model A's training split, projected once into monitoring features."""

from __future__ import annotations

from pathlib import Path

from cloud.data.splits import read_split
from shared.errors import UserError
from shared.monitoring.features import FeatureTable, project

BASELINE_NAME = "2025 train"


def baseline_table(splits: Path, train: tuple[list[str], list[int]] | None = None) -> FeatureTable:
    """The training split (`splits/train.csv`: id, title, text, label) as feature rows. Its class is the
    title label A learned from; it has no confidence (no model served it) and no timestamp. `train`: the
    split's (texts, labels) when the caller has read it already."""
    texts, labels = train if train is not None else read_split(Path(splits) / "train.csv")
    if not texts:
        raise UserError(f"{Path(splits) / 'train.csv'}: the 2025 training split is empty")
    return project(texts, labels, model="", source="kaggle_2025", timestamp=None)
