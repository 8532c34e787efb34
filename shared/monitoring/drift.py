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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from shared.monitoring.features import (
    CLASS_FEATURE,
    NUMERIC_FEATURES,
    FeatureTable,
    categorical_features,
)
from shared.skills import CATEGORIES, SKILLS

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
def category_distribution(values: np.ndarray, categories: int) -> np.ndarray | None:
    """Shares of the values 0..categories-1 (negative = missing, ignored); None when nothing is left."""
    values = np.asarray(values)
    values = values[values >= 0]
    if values.size == 0:
        return None
    counts = np.bincount(values.astype(np.int64), minlength=categories)[:categories]
    return counts / counts.sum()


def bucket_edges(reference: np.ndarray, window: np.ndarray, buckets: int = NUMERIC_BUCKETS) -> np.ndarray:
    """Inner bucket edges from the reference's quantiles (both sides when the reference is constant)."""
    reference = reference[np.isfinite(reference)]
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, buckets + 1)[1:-1])) if reference.size else []
    if len(edges) == 0:
        both = np.concatenate([reference, window[np.isfinite(window)]])
        edges = np.unique(np.linspace(both.min(), both.max(), buckets + 1)[1:-1]) if both.size else np.array([])
    return np.asarray(edges, dtype=np.float64)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray | None:
    """Shares per bucket (-inf, e0], (e0, e1], ..., (ek, inf); NaN ignored; None when empty."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / counts.sum()


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


def _categorical_drift(feature, reference, window, categories, thresholds, n_ref, n_win) -> FeatureDrift:
    p, q = category_distribution(reference, categories), category_distribution(window, categories)
    threshold = thresholds.for_feature(feature)
    if p is None or q is None:
        side = "reference" if p is None else "window"
        return FeatureDrift(feature, "categorical", "l_infinity", None, None, threshold, False, n_ref, n_win,
                            f"no values in the {side}")  # fmt: skip
    value = l_infinity(p, q)
    return FeatureDrift(feature, "categorical", "l_infinity", value, psi(p, q), threshold, value >= threshold,
                        n_ref, n_win)  # fmt: skip


def _numeric_drift(feature, reference, window, thresholds, buckets) -> FeatureDrift:
    edges = bucket_edges(reference, window, buckets)
    p, q = histogram(reference, edges), histogram(window, edges)
    threshold = thresholds.for_feature(feature)
    n_ref, n_win = int(np.isfinite(reference).sum()), int(np.isfinite(window).sum())
    if p is None or q is None:
        side = "reference" if p is None else "window"
        return FeatureDrift(feature, "numeric", "jensen_shannon_divergence", None, None, threshold, False, n_ref,
                            n_win, f"no values in the {side}")  # fmt: skip
    value = jensen_shannon(p, q)
    return FeatureDrift(feature, "numeric", "jensen_shannon_divergence", value, psi(p, q), threshold,
                        value >= threshold, n_ref, n_win)  # fmt: skip


def compare(
    reference: FeatureTable,
    window: FeatureTable,
    thresholds: Thresholds | None = None,
    buckets: int = NUMERIC_BUCKETS,
) -> list[FeatureDrift]:
    """Every feature's distance between `reference` and `window`, in `categorical_features()` order,
    then the numeric ones. Skill and category flags are counted once per side (vectorised)."""
    thresholds = thresholds or Thresholds()
    n_ref, n_win = len(reference), len(window)
    ref_skills, win_skills = _flag_columns(reference), _flag_columns(window)
    results = []
    for i, feature in enumerate(categorical_features()[:-1]):
        results.append(_categorical_drift(feature, ref_skills[:, i], win_skills[:, i], 2, thresholds, n_ref, n_win))
    results.append(
        _categorical_drift(
            CLASS_FEATURE, reference.predicted_class, window.predicted_class, 2, thresholds, n_ref, n_win
        )
    )
    for feature in NUMERIC_FEATURES:
        results.append(
            _numeric_drift(feature, reference.numeric(feature), window.numeric(feature), thresholds, buckets)
        )
    return results


_CATEGORY_MATRIX = np.array([[s.category == c for c in CATEGORIES] for s in SKILLS], dtype=bool)


def _flag_columns(table: FeatureTable) -> np.ndarray:
    """int8 (n, skills + categories): the 0/1 flags in `categorical_features()` order."""
    categories = (table.skills.astype(np.int32) @ _CATEGORY_MATRIX.astype(np.int32)) > 0
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
