"""The monitoring projection: a posting or a logged prediction becomes one row of features.

Features (what drift is measured on):

* `skill:<name>`   - categorical (0/1): the posting names the skill (`shared.skills`, one per skill);
* `category:<cat>` - categorical (0/1): it names any skill of that category;
* `predicted_class`- categorical (0/1): the served label (for the 2025 baseline: the title label);
* `confidence`     - numeric: the served class's probability (absent for the baseline: NaN);
* `text_length`    - numeric: characters of the cleaned text the model read.

Metadata carried beside them, never compared: `model`, `source`, `timestamp`.

Rows are held column-wise (`FeatureTable`): a boolean skill matrix and flat arrays, so a window of
100,000 predictions is a few MB and every metric is a vectorised count. Projection (skill matching)
is the expensive part, ~1-3 ms per full posting; callers that see the same rows again keep the
table (`FeatureTable.save`/`load`) instead of matching twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shared.skills import CATEGORIES, SKILLS, skill_names

SKILL_NAMES: tuple[str, ...] = tuple(skill.name for skill in SKILLS)
SKILL_INDEX = {name: i for i, name in enumerate(SKILL_NAMES)}
# bool (skills, categories): which category each skill is in, in SKILLS and CATEGORIES order.
CATEGORY_MATRIX = np.array([[skill.category == category for category in CATEGORIES] for skill in SKILLS], dtype=bool)
_CATEGORY_COLUMN = {category: i for i, category in enumerate(CATEGORIES)}
NUMERIC_FEATURES = ("confidence", "text_length")
CLASS_FEATURE = "predicted_class"


def categorical_features() -> list[str]:
    """Every categorical feature name, in a fixed order (skills, then categories, then the class)."""
    return [f"skill:{n}" for n in SKILL_NAMES] + [f"category:{c}" for c in CATEGORIES] + [CLASS_FEATURE]


@dataclass
class FeatureTable:
    """Feature rows, column-wise. All arrays have one entry per row."""

    skills: np.ndarray  # bool (n, len(SKILL_NAMES))
    predicted_class: np.ndarray  # int8 (n,): 0/1, -1 when unknown
    confidence: np.ndarray  # float64 (n,): NaN when the row has none
    text_length: np.ndarray  # float64 (n,)
    model: np.ndarray  # str (n,)
    source: np.ndarray  # str (n,)
    timestamp: np.ndarray  # datetime64[s] (n,), UTC

    def __len__(self) -> int:
        return int(self.predicted_class.shape[0])

    @classmethod
    def empty(cls) -> FeatureTable:
        return cls(
            np.zeros((0, len(SKILL_NAMES)), dtype=bool),
            np.zeros(0, dtype=np.int8),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0, dtype="U1"),
            np.zeros(0, dtype="U1"),
            np.zeros(0, dtype="datetime64[s]"),
        )

    def categorical(self, feature: str) -> np.ndarray:
        """The values of one categorical feature as small non-negative ints (-1 = missing)."""
        if feature == CLASS_FEATURE:
            return self.predicted_class.astype(np.int64)
        kind, _, name = feature.partition(":")
        if kind == "skill" and name in SKILL_INDEX:
            return self.skills[:, SKILL_INDEX[name]].astype(np.int64)
        if kind == "category" and name in _CATEGORY_COLUMN:
            return self.skills[:, CATEGORY_MATRIX[:, _CATEGORY_COLUMN[name]]].any(axis=1).astype(np.int64)
        raise KeyError(f"unknown categorical feature {feature!r}")

    def numeric(self, feature: str) -> np.ndarray:
        if feature not in NUMERIC_FEATURES:
            raise KeyError(f"unknown numeric feature {feature!r}")
        return getattr(self, feature)

    def select(self, mask: np.ndarray) -> FeatureTable:
        return FeatureTable(
            self.skills[mask],
            self.predicted_class[mask],
            self.confidence[mask],
            self.text_length[mask],
            self.model[mask],
            self.source[mask],
            self.timestamp[mask],
        )

    def iso_weeks(self) -> np.ndarray:
        """ISO week label per row ("2026-W27"); one Python call per distinct day, not per row."""
        days = self.timestamp.astype("datetime64[D]")
        unique, inverse = np.unique(days, return_inverse=True)
        labels = [iso_week_label(day.astype(datetime)) for day in unique]
        return np.asarray(labels, dtype="U8")[inverse] if len(unique) else np.zeros(0, dtype="U8")

    @staticmethod
    def concat(tables: Sequence[FeatureTable]) -> FeatureTable:
        tables = [t for t in tables if len(t)] or [FeatureTable.empty()]
        return FeatureTable(
            *(np.concatenate([getattr(t, name) for t in tables]) for name in FeatureTable.__dataclass_fields__)
        )

    def save(self, file, **extra: np.ndarray) -> None:
        """One .npz (the projection cache) to a path or file object, with the caller's `extra` arrays beside
        the columns; written by the caller's atomic writer of choice."""
        np.savez_compressed(file, skill_names=np.asarray(SKILL_NAMES), **extra, **self.__dict__)

    @classmethod
    def load(cls, path: str | Path, extra: Sequence[str] = ()) -> tuple[FeatureTable, dict[str, np.ndarray]]:
        """The table `save` wrote, and the `extra` arrays named (KeyError when one is missing)."""
        with np.load(path, allow_pickle=False) as data:
            if tuple(data["skill_names"].tolist()) != SKILL_NAMES:
                raise ValueError(f"{path}: projected with another skills table; project again")
            return cls(*(data[name] for name in cls.__dataclass_fields__)), {name: data[name] for name in extra}


def iso_week_label(day) -> str:
    """A date's (or datetime's) ISO week, as "2026-W27"."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_timestamp(value) -> np.datetime64:
    """ISO 8601 text (with or without "Z"/offset), a date, or a datetime -> datetime64[s] UTC (NaT if none)."""
    if value is None or value == "":
        return np.datetime64("NaT", "s")
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return np.datetime64("NaT", "s")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "s")


def skill_flags(texts: Iterable[str]) -> np.ndarray:
    """bool (n, len(SKILL_NAMES)): which skills each text names."""
    rows = []
    for text in texts:
        row = np.zeros(len(SKILL_NAMES), dtype=bool)
        for name in skill_names(text or ""):
            row[SKILL_INDEX[name]] = True
        rows.append(row)
    return np.vstack(rows) if rows else np.zeros((0, len(SKILL_NAMES)), dtype=bool)


def project(
    texts: Sequence[str],
    predicted_class: Sequence[int] | None = None,
    confidence: Sequence[float] | None = None,
    model: Sequence[str] | str = "",
    source: Sequence[str] | str = "",
    timestamp: Sequence | str | None = None,
) -> FeatureTable:
    """Project postings (or logged predictions) into feature rows. Device and cloud both call this.

    `texts` are what the model read (cleaned). Scalars for model/source/timestamp apply to every row;
    a missing class is -1, a missing confidence NaN, a missing or unreadable timestamp NaT.
    """
    n = len(texts)

    def column(values, fill, dtype):
        if values is None:
            return np.full(n, fill, dtype=dtype)
        if len(values) != n:
            raise ValueError(f"{len(values)} values for {n} texts")
        return np.asarray(values, dtype=dtype)

    def labels(values) -> np.ndarray:
        if isinstance(values, str):
            return np.full(n, values, dtype=f"U{max(1, len(values))}")
        return column([str(v) for v in values], "", str)

    timestamps = (
        np.full(n, parse_timestamp(timestamp), dtype="datetime64[s]")
        if timestamp is None or isinstance(timestamp, str)
        else np.asarray([parse_timestamp(t) for t in timestamp], dtype="datetime64[s]")
    )
    if len(timestamps) != n:
        raise ValueError(f"{len(timestamps)} timestamps for {n} texts")
    return FeatureTable(
        skills=skill_flags(texts),
        predicted_class=column(predicted_class, -1, np.int8),
        confidence=column(confidence, np.nan, np.float64),
        text_length=np.asarray([len(t or "") for t in texts], dtype=np.float64),
        model=labels(model),
        source=labels(source),
        timestamp=timestamps,
    )
