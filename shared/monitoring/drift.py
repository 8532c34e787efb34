"""Skew and drift between two sets of feature rows, computed as Vertex AI Model Monitoring does.

* Categorical features: the **L-infinity distance**, the largest absolute difference between the two
  value distributions (for a 0/1 skill flag: |share in window - share in reference|). In [0, 1].
* Numeric features: the **Jensen-Shannon divergence** of the two histograms over buckets fixed by the
  reference (its deciles), base 2 so it lies in [0, 1]: 0.5 KL(p||m) + 0.5 KL(q||m), m = (p + q) / 2.
* Every feature also gets the **population stability index**, PSI = sum (q - p) ln(q / p), with empty
  buckets floored at `PSI_FLOOR` (PSI is unbounded and undefined on an empty bucket otherwise).

The alert threshold is Vertex's default, 0.3, for every feature unless overridden (`Thresholds`).
**Training-serving skew** compares a serving window with the 2025 training rows; **prediction
drift** compares a window with the previous window. Both are `compare(reference, window)`.

Empty sides never divide by zero: the feature is reported with `value=None` and a note saying why.
Comparisons run on `Profile`s (counts per value or bucket), so the device can compare its own window
with the shipped 2025 profile without the 2025 rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from shared.monitoring.features import (
    CATEGORY_MATRIX,
    CLASS_FEATURE,
    NUMERIC_FEATURES,
    FeatureTable,
    categorical_features,
)

VERTEX_DEFAULT_THRESHOLD = 0.3
PSI_FLOOR = 1e-4
NUMERIC_BUCKETS = 10


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds: one default, per-feature overrides ("confidence", "skill:LangChain"), and
    per-family ones ("skill:*", "category:*")."""

    default: float = VERTEX_DEFAULT_THRESHOLD
    overrides: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        for name, value in {"default": self.default, **self.overrides}.items():
            if not (isinstance(value, int | float) and 0 < float(value) <= 1):
                raise ValueError(f"threshold {name} = {value!r}: must be a number in (0, 1]")

    def for_feature(self, feature: str) -> float:
        if feature in self.overrides:
            return float(self.overrides[feature])
        family = feature.split(":", 1)[0] + ":*"
        return float(self.overrides.get(family, self.default))


# --- metrics on two probability vectors ----------------------------------------------------------
def _check(p, q) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"distributions must be 1-D and of one length, got {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any() or not np.isclose(p.sum(), 1) or not np.isclose(q.sum(), 1):
        raise ValueError("distributions must be non-negative and sum to 1")
    return p, q


def l_infinity(p, q) -> float:
    p, q = _check(p, q)
    return float(np.max(np.abs(p - q)))


def jensen_shannon(p, q) -> float:
    """Jensen-Shannon divergence, base 2 (in [0, 1]); 0 log 0 = 0."""
    p, q = _check(p, q)
    m = (p + q) / 2

    def kl(a):
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def psi(p, q, floor: float = PSI_FLOOR) -> float:
    """Population stability index of window `q` against reference `p`, empty buckets floored."""
    p, q = _check(p, q)
    p, q = np.maximum(p, floor), np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


# --- distributions ------------------------------------------------------------------------------
def bucket_edges(reference: np.ndarray, buckets: int = NUMERIC_BUCKETS) -> np.ndarray:
    """Inner bucket edges: the reference's quantiles (deduplicated; a constant reference gives one edge)."""
    reference = reference[np.isfinite(reference)]
    if reference.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(reference, np.linspace(0, 1, buckets + 1)[1:-1]))


def bucket_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bucket (-inf, e0], (e0, e1], ..., (ek, inf); NaN ignored."""
    values = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray | None:
    """Shares per bucket (see `bucket_counts`); None when there is no value."""
    counts = bucket_counts(values, edges)
    return counts / counts.sum() if counts.sum() else None


# --- profiles: the counts a comparison needs ------------------------------------------------------
@dataclass
class Profile:
    """What `compare` needs from a set of rows: counts, not rows. Small enough to ship to a device
    (the 2025 baseline, shared/monitoring/baseline_2025.json) and to send back in a summary."""

    documents: int
    flag_counts: np.ndarray  # int (skills + categories,): rows with the flag set
    class_counts: np.ndarray  # int (2,): rows per predicted class (unknown class not counted)
    numeric: dict[str, tuple[np.ndarray, np.ndarray]]  # feature -> (inner edges, counts per bucket)

    @classmethod
    def of(cls, table: FeatureTable, edges_from: Profile | None = None, buckets: int = NUMERIC_BUCKETS) -> Profile:
        """The profile of `table`; numeric buckets are `edges_from`'s (a window is bucketed like its
        reference), else this table's own deciles."""
        numeric = {}
        for feature in NUMERIC_FEATURES:
            values = table.numeric(feature)
            edges = edges_from.numeric[feature][0] if edges_from is not None else bucket_edges(values, buckets)
            numeric[feature] = (edges, bucket_counts(values, edges))
        known = table.predicted_class[table.predicted_class >= 0].astype(np.int64)
        return cls(
            documents=len(table),
            flag_counts=_flag_columns(table).sum(axis=0).astype(np.int64),
            class_counts=np.bincount(known, minlength=2)[:2],
            numeric=numeric,
        )

    def to_json(self) -> dict:
        return {
            "documents": self.documents,
            "flags": dict(zip(categorical_features()[:-1], self.flag_counts.tolist())),
            "class_counts": self.class_counts.tolist(),
            "numeric": {f: {"edges": e.tolist(), "counts": c.tolist()} for f, (e, c) in self.numeric.items()},
        }

    @classmethod
    def from_json(cls, payload: dict) -> Profile:
        """A profile read back; a flag it does not list (a skill added since) counts as never set."""
        flags = payload["flags"]
        return cls(
            documents=int(payload["documents"]),
            flag_counts=np.asarray([int(flags.get(f, 0)) for f in categorical_features()[:-1]], dtype=np.int64),
            class_counts=np.asarray(payload["class_counts"], dtype=np.int64),
            numeric={
                f: (np.asarray(v["edges"], dtype=np.float64), np.asarray(v["counts"], dtype=np.int64))
                for f, v in payload["numeric"].items()
            },
        )


# --- comparing two tables -----------------------------------------------------------------------
@dataclass
class FeatureDrift:
    feature: str
    kind: str  # "categorical" | "numeric"
    metric: str  # "l_infinity" | "jensen_shannon_divergence"
    value: float | None  # None: not computable (see note)
    psi: float | None
    threshold: float
    alert: bool
    reference_n: int
    window_n: int
    note: str = ""

    def to_json(self) -> dict:
        body = asdict(self)
        for key in ("value", "psi"):
            body[key] = None if body[key] is None else round(body[key], 6)
        return body


def _drift(feature, kind, p_counts, q_counts, thresholds, n_ref, n_win) -> FeatureDrift:
    metric = "l_infinity" if kind == "categorical" else "jensen_shannon_divergence"
    threshold = thresholds.for_feature(feature)
    empty = "reference" if not p_counts.sum() else "window" if not q_counts.sum() else None
    if empty:
        return FeatureDrift(
            feature, kind, metric, None, None, threshold, False, n_ref, n_win, f"no values in the {empty}"
        )
    p, q = p_counts / p_counts.sum(), q_counts / q_counts.sum()
    value = l_infinity(p, q) if kind == "categorical" else jensen_shannon(p, q)
    return FeatureDrift(feature, kind, metric, value, psi(p, q), threshold, value >= threshold, n_ref, n_win)


def compare_profiles(reference: Profile, window: Profile, thresholds: Thresholds | None = None) -> list[FeatureDrift]:
    """Every feature's distance from `reference` to `window` (bucketed with the reference's edges):
    `categorical_features()` in order, then the numeric ones."""
    thresholds = thresholds or Thresholds()
    n_ref, n_win = reference.documents, window.documents
    results = []
    for i, feature in enumerate(categorical_features()[:-1]):
        p = np.array([n_ref - reference.flag_counts[i], reference.flag_counts[i]])
        q = np.array([n_win - window.flag_counts[i], window.flag_counts[i]])
        results.append(_drift(feature, "categorical", p, q, thresholds, n_ref, n_win))
    results.append(
        _drift(CLASS_FEATURE, "categorical", reference.class_counts, window.class_counts, thresholds, n_ref, n_win)
    )
    for feature in NUMERIC_FEATURES:
        ref_edges, ref_counts = reference.numeric[feature]
        win_edges, win_counts = window.numeric[feature]
        if not np.array_equal(ref_edges, win_edges):
            raise ValueError(f"{feature}: the window was bucketed with other edges than the reference")
        results.append(_drift(feature, "numeric", ref_counts, win_counts, thresholds, n_ref, n_win))
    return results


def compare(
    reference: FeatureTable,
    window: FeatureTable,
    thresholds: Thresholds | None = None,
    buckets: int = NUMERIC_BUCKETS,
) -> list[FeatureDrift]:
    """`compare_profiles` of two tables: the window bucketed by the reference's deciles."""
    ref_profile = Profile.of(reference, buckets=buckets)
    return compare_profiles(ref_profile, Profile.of(window, edges_from=ref_profile), thresholds)


def _flag_columns(table: FeatureTable) -> np.ndarray:
    """int8 (n, skills + categories): the 0/1 flags in `categorical_features()` order."""
    categories = (table.skills.astype(np.int32) @ CATEGORY_MATRIX.astype(np.int32)) > 0
    return np.concatenate([table.skills, categories], axis=1).astype(np.int8)


def summary(drifts: list[FeatureDrift]) -> dict:
    """The headline of a comparison: how many features alert, and the worst ones."""
    scored = [d for d in drifts if d.value is not None]
    worst = sorted(scored, key=lambda d: d.value / d.threshold, reverse=True)[:10]
    return {
        "features": len(drifts),
        "computed": len(scored),
        "alerts": [d.feature for d in drifts if d.alert],
        "worst": [{"feature": d.feature, "value": round(d.value, 6), "threshold": d.threshold} for d in worst],
    }
