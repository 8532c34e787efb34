"""Per-skill shares over time, the rising and falling skills, and the trends file the device reads.

A share over a handful of postings is not a trend, so every share travels with its counts, and a
skill is only called rising or falling when it is named at least `min_count` times on one side
(params.yaml `monitoring.min_count`). The trends file is what `device.advice.DemandTable` ranks
"next skills" by::

    {"format": 1, "generated_at": "...", "window": "2026-W34", "documents": 803,
     "baseline": {"window": "2025 train", "documents": 431}, "min_count": 5,
     "skills": {"LangChain": {"share": 0.04, "count": 32, "baseline_share": 0.0, "baseline_count": 0}, ...}}
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from shared.monitoring.features import SKILL_INDEX, SKILL_NAMES, FeatureTable

TRENDS_FORMAT = 1
TRENDS_IN_BUNDLE = "trends.json"  # a model bundle may carry the trends file (its signed manifest covers it)
MIN_COUNT = 5


def skill_counts(table: FeatureTable) -> np.ndarray:
    """int (len(SKILL_NAMES),): rows naming each skill."""
    return table.skills.sum(axis=0).astype(np.int64)


def shares_by_group(table: FeatureTable, groups: np.ndarray) -> dict[str, dict]:
    """{group: {"documents": n, "counts": {skill: k}}} for each distinct group label (e.g. ISO week)."""
    result = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        counts = table.skills[mask].sum(axis=0)
        result[str(group)] = {
            "documents": int(mask.sum()),
            "counts": {SKILL_NAMES[i]: int(counts[i]) for i in np.flatnonzero(counts)},
        }
    return result


def _share(count: int, documents: int) -> float:
    return count / documents if documents else 0.0


def skill_movement(
    baseline: FeatureTable, window: FeatureTable, min_count: int = MIN_COUNT, top: int = 10
) -> dict[str, list[dict]]:
    """The skills whose share moved most from baseline to window, with counts; only skills named at
    least `min_count` times on one side qualify (the rest are listed as `too_rare`)."""
    base_counts, win_counts = skill_counts(baseline), skill_counts(window)
    n_base, n_win = len(baseline), len(window)
    rows, too_rare = [], 0
    for i, name in enumerate(SKILL_NAMES):
        count, base = int(win_counts[i]), int(base_counts[i])
        if count == 0 and base == 0:
            continue
        if max(count, base) < min_count:
            too_rare += 1
            continue
        share, base_share = _share(count, n_win), _share(base, n_base)
        rows.append(
            {
                "skill": name,
                "count": count,
                "documents": n_win,
                "share": round(share, 6),
                "baseline_count": base,
                "baseline_documents": n_base,
                "baseline_share": round(base_share, 6),
                "change": round(share - base_share, 6),
            }
        )
    rows.sort(key=lambda r: r["change"], reverse=True)
    return {
        "rising": [r for r in rows if r["change"] > 0][:top],
        "falling": [r for r in reversed(rows) if r["change"] < 0][:top],
        "too_rare": too_rare,
        "min_count": min_count,
    }


def build_trends(
    baseline: FeatureTable,
    window: FeatureTable,
    window_label: str,
    baseline_label: str = "2025 train",
    min_count: int = MIN_COUNT,
    generated_at: str | None = None,
) -> dict:
    """The trends file: per-skill share in `window` and in the baseline, for skills that pass `min_count`."""
    if len(window) == 0:
        raise ValueError(f"window {window_label}: no postings, no trends to write")
    base_counts, win_counts = skill_counts(baseline), skill_counts(window)
    skills = {}
    for i, name in enumerate(SKILL_NAMES):
        count, base = int(win_counts[i]), int(base_counts[i])
        if max(count, base) >= min_count:
            skills[name] = {
                "share": round(_share(count, len(window)), 6),
                "count": count,
                "baseline_share": round(_share(base, len(baseline)), 6),
                "baseline_count": base,
            }
    return {
        "format": TRENDS_FORMAT,
        "generated_at": generated_at or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "window": window_label,
        "documents": len(window),
        "baseline": {"window": baseline_label, "documents": len(baseline)},
        "min_count": min_count,
        "skills": skills,
    }


class TrendsError(ValueError):
    """A trends file that cannot be used at all (the reason is one readable sentence)."""


def check_trends(payload) -> tuple[dict, list[str]]:
    """A trends file cleaned for use: (trends, problems). Entries naming a skill the table does not
    know, or with a share outside [0, 1], are dropped and listed in `problems`; a payload without a
    `skills` object raises TrendsError."""
    if not isinstance(payload, dict) or not isinstance(payload.get("skills"), dict):
        raise TrendsError("no 'skills' object")
    kept, problems = {}, []
    unknown = sorted(name for name in payload["skills"] if name not in SKILL_INDEX)
    if unknown:
        problems.append(f"{len(unknown)} unknown skills ignored: {', '.join(map(str, unknown[:5]))}")
    for name, stats in payload["skills"].items():
        if name not in SKILL_INDEX:
            continue
        try:
            share, base = float(stats.get("share", 0.0)), float(stats.get("baseline_share", 0.0))
        except (AttributeError, TypeError, ValueError):
            problems.append(f"{name}: shares are not numbers; ignored")
            continue
        if not (0.0 <= share <= 1.0 and 0.0 <= base <= 1.0):
            problems.append(f"{name}: share outside [0, 1]; ignored")
            continue
        kept[name] = {**stats, "share": share, "baseline_share": base}
    return {**payload, "skills": kept}, problems
