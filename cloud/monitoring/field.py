"""Field traffic: the predictions devices logged (the collector's store) as monitoring features, and
what shadow mode tells where no labels exist (served model vs shadow model: agreement, and the
disagreements by skill).

Projection (skill matching) is the costly step, ~1-3 ms per posting, so it runs once per logged
prediction: the job keeps the projected rows in a cache file keyed by (device_id, uuid) and only
projects rows it has not seen. The store is read a chunk at a time and each chunk's texts are dropped
once projected, so a first run over a large store holds one chunk of texts, not all of them. A device
in privacy mode "hash" sends no text: its rows are projected from the snippet, which names fewer
skills (their share is a lower bound).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.files import atomic_write_bytes
from shared.monitoring.features import SKILL_NAMES, FeatureTable, project


@dataclass
class LoggedPredictions:
    """Rows read from the collector (one per stored prediction), column-wise."""

    keys: list[str]  # "device_id/uuid"
    texts: list[str]  # text, else snippet, else ""
    labels: np.ndarray  # int
    p1: np.ndarray  # float: the served P(Data Science)
    model: list[str]
    source: list[str]
    created_at: list[str]
    received_at: list[str]
    shadow_model: list[str | None]
    shadow_p1: np.ndarray  # float, NaN when the row has no shadow prediction

    @staticmethod
    def concat(parts: list[LoggedPredictions]) -> LoggedPredictions:
        """The parts' rows in order (their texts too: `without_texts` them first to keep memory down)."""
        lists = ("keys", "texts", "model", "source", "created_at", "received_at", "shadow_model")
        arrays = ("labels", "p1", "shadow_p1")
        empty = LoggedPredictions.from_rows([])
        return LoggedPredictions(
            **{name: [v for part in parts for v in getattr(part, name)] for name in lists},
            **{name: np.concatenate([getattr(p, name) for p in [empty, *parts]]) for name in arrays},
        )

    def without_texts(self) -> LoggedPredictions:
        """The same rows with their texts dropped (projected already: the features hold what is needed)."""
        return dataclasses.replace(self, texts=[""] * len(self.keys))

    @classmethod
    def from_rows(cls, rows: list[dict]) -> LoggedPredictions:
        def shadow_p1(row):
            value = row.get("shadow_p1")
            return np.nan if value is None else float(value)

        return cls(
            keys=[f"{r['device_id']}/{r['uuid']}" for r in rows],
            texts=[r.get("text") or r.get("snippet") or "" for r in rows],
            labels=np.asarray([int(r["label"]) for r in rows], dtype=np.int8),
            p1=np.asarray([float(r["p1"]) for r in rows], dtype=np.float64),
            model=[r.get("model_name") or "" for r in rows],
            source=[r.get("source") or "" for r in rows],
            created_at=[r["created_at"] for r in rows],
            received_at=[r["received_at"] for r in rows],
            shadow_model=[r.get("shadow_model") for r in rows],
            shadow_p1=np.asarray([shadow_p1(r) for r in rows], dtype=np.float64),
        )


class ProjectionCache:
    """Projected feature rows keyed by (device_id, uuid), kept in one .npz between runs."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.keys: list[str] = []
        self.table = FeatureTable.empty()
        self.received_through: str | None = None  # every row received before this is projected
        if self.path and self.path.is_file():
            try:
                self.table, extra = FeatureTable.load(self.path, extra=("keys", "received_through"))
                self.keys = extra["keys"].tolist()
                self.received_through = str(extra["received_through"]) or None
            except (OSError, ValueError, KeyError):
                self.keys, self.table = [], FeatureTable.empty()  # stale or unreadable: project again
        # Fixed for this run: the store sends texts only for rows received from here on.
        self.texts_from = self.received_through
        self._index = {key: i for i, key in enumerate(self.keys)}

    def features(self, logged: LoggedPredictions) -> tuple[FeatureTable, int]:
        """Feature rows for `logged` (the whole store, or one chunk of it in store order), in its order;
        returns (table, rows projected now)."""
        known = self._index
        missing = [i for i, key in enumerate(logged.keys) if key not in known]
        if self.texts_from is not None and any(
            logged.received_at[i] < self.texts_from for i in missing
        ):  # cannot happen with the store's clock moving forward; refuse rather than project empty text
            raise ValueError("rows older than the projection cache are missing from it; delete the cache file")
        if logged.received_at:
            self.received_through = max(self.received_through or "", *logged.received_at)
        if missing:
            fresh = project(
                [logged.texts[i] for i in missing],
                logged.labels[missing],
                np.where(logged.labels[missing] == 1, logged.p1[missing], 1 - logged.p1[missing]),
                [logged.model[i] for i in missing],
                [logged.source[i] for i in missing],
                [logged.created_at[i] for i in missing],
            )
            start = len(self.keys)
            self.keys.extend(logged.keys[i] for i in missing)
            self.table = FeatureTable.concat([self.table, fresh])
            known.update({logged.keys[i]: start + n for n, i in enumerate(missing)})
        order = np.asarray([known[key] for key in logged.keys], dtype=np.int64)
        return self.table.select(order), len(missing)

    def save(self) -> None:
        if self.path is None:
            return
        import io

        buffer = io.BytesIO()
        self.table.save(
            buffer, keys=np.asarray(self.keys, dtype=str), received_through=np.asarray(self.received_through or "")
        )
        atomic_write_bytes(self.path, buffer.getvalue())


def shadow_agreement(logged: LoggedPredictions, table: FeatureTable, min_count: int) -> dict:
    """Served vs shadow label where a shadow prediction exists: overall, per ISO week, per skill."""
    has_shadow = np.isfinite(logged.shadow_p1)
    pairs = int(has_shadow.sum())
    if pairs == 0:
        return {"pairs": 0, "note": "no shadow predictions logged (enable [model] shadow on a device)"}
    served = logged.labels[has_shadow]
    shadow = (logged.shadow_p1[has_shadow] >= 0.5).astype(np.int8)
    disagree = served != shadow
    skills = table.skills[has_shadow]
    weeks = table.select(has_shadow).iso_weeks()
    by_skill = []
    for i, name in enumerate(SKILL_NAMES):
        mask = skills[:, i]
        n = int(mask.sum())
        if n < min_count:
            continue
        k = int(disagree[mask].sum())
        by_skill.append({"skill": name, "pairs": n, "disagreements": k, "rate": round(k / n, 6)})
    by_skill.sort(key=lambda row: (row["rate"], row["pairs"]), reverse=True)
    shadow_models = sorted({m for m, s in zip(logged.shadow_model, has_shadow) if s and m})
    return {
        "pairs": pairs,
        "agreement": round(float(1 - disagree.mean()), 6),
        "served_to_shadow": {f"{a}->{b}": int(((served == a) & (shadow == b)).sum()) for a in (0, 1) for b in (0, 1)},
        "shadow_models": shadow_models,
        "by_week": {
            str(w): {"pairs": int((weeks == w).sum()), "agreement": round(float(1 - disagree[weeks == w].mean()), 6)}
            for w in sorted(set(weeks.tolist()))
        },
        "by_skill": by_skill,
        "min_count": min_count,
    }
