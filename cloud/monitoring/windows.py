"""Skew, drift and skill movement per time window: the one analysis the weekly replay, the job over
logged predictions and the device's status all report."""

from __future__ import annotations

import numpy as np

from cloud.monitoring.settings import MonitoringSettings
from shared.monitoring.drift import compare, summary
from shared.monitoring.features import FeatureTable
from shared.monitoring.trends import skill_movement


def class_counts(table: FeatureTable) -> dict[str, int]:
    return {str(k): int((table.predicted_class == k).sum()) for k in (0, 1)}


def comparison(reference: FeatureTable, window: FeatureTable, settings: MonitoringSettings) -> dict:
    drifts = compare(reference, window, settings.alert_thresholds(), settings.buckets)
    return {"summary": summary(drifts), "features": [d.to_json() for d in drifts]}


def window_reports(
    baseline: FeatureTable, table: FeatureTable, groups: np.ndarray, settings: MonitoringSettings
) -> list[dict]:
    """One entry per group (in sorted order): skew against the baseline, drift against the previous
    group, and the rising / falling skills against the baseline, with counts."""
    reports, previous = [], None
    for group in sorted(set(groups.tolist())):
        window = table.select(groups == group)
        reports.append(
            {"window": str(group), "documents": len(window), **window_figures(baseline, previous, window, settings)}
        )
        previous = window
    return reports


def window_figures(
    baseline: FeatureTable, previous: FeatureTable | None, window: FeatureTable, settings: MonitoringSettings
) -> dict:
    """One window's monitoring: its classes, skew against the baseline, drift against the previous window
    (None for the first), and the skills rising / falling against the baseline."""
    return {
        "class_counts": class_counts(window),
        "skew": comparison(baseline, window, settings),
        "drift": None if previous is None else comparison(previous, window, settings),
        "movement": skill_movement(baseline, window, settings.min_count, settings.top_skills),
    }
