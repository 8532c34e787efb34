"""Per-skill shares with counts, the trends file, and the 2025 profile the device ships."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from device.advice import DemandTable, advise
from shared.monitoring.features import SKILL_INDEX, FeatureTable, project
from shared.monitoring.trends import TrendsError, build_trends, check_trends, shares_by_group, skill_movement


def _table(texts, timestamp="2026-07-08T09:00:00Z"):
    return project(texts, [0] * len(texts), [0.9] * len(texts), model="m", source="s", timestamp=timestamp)


def test_movement_needs_min_count_and_carries_counts():
    baseline = _table(["Python and SQL"] * 40 + ["Java"] * 60)
    window = _table(["LangChain agents in Python"] * 6 + ["Mojo"] * 2 + ["Java"] * 12)
    moved = skill_movement(baseline, window, min_count=5)
    rising = {row["skill"]: row for row in moved["rising"]}
    assert rising["LangChain"]["count"] == 6 and rising["LangChain"]["documents"] == 20
    assert rising["LangChain"]["baseline_count"] == 0 and rising["LangChain"]["share"] == pytest.approx(0.3)
    assert "Mojo" not in rising  # named twice: not a trend
    assert moved["too_rare"] >= 1
    assert {row["skill"] for row in moved["falling"]} >= {"SQL"}


def test_shares_by_iso_week():
    table = FeatureTable.concat(
        [_table(["RAG with LangChain"] * 3, "2026-07-06T00:00:00Z"), _table(["Java"] * 2, "2026-07-13T12:00:00Z")]
    )
    weeks = shares_by_group(table, table.iso_weeks())
    assert weeks == {
        "2026-W28": {"documents": 3, "counts": {"LangChain": 3, "RAG": 3}},
        "2026-W29": {"documents": 2, "counts": {"Java": 2}},
    }


def test_trends_file_drives_advice_and_unknown_skills_are_dropped_with_a_message(tmp_path, caplog):
    trends = build_trends(_table(["Java"] * 20), _table(["LangChain and RAG"] * 8 + ["Java"] * 2), "2026-W31")
    assert trends["skills"]["LangChain"] == {"share": 0.8, "count": 8, "baseline_share": 0.0, "baseline_count": 0}
    trends["skills"]["Quantum Basket Weaving"] = {"share": 0.5, "baseline_share": 0.1}
    trends["skills"]["RAG"]["share"] = 7  # a share outside [0, 1]
    path = tmp_path / "trends.json"
    path.write_text(json.dumps(trends))
    with caplog.at_level(logging.WARNING):
        table = DemandTable.load(path)
    assert table.source["kind"] == "drift"
    assert "Quantum Basket Weaving" not in table.trends["skills"] and "RAG" not in table.trends["skills"]
    assert any("unknown skills ignored" in str(getattr(r, "fields", r.getMessage())) for r in caplog.records)
    advice = advise("We build Java services.", 0, 0.9, ["Java"], table=table)
    assert advice.next_skills[0].name == "LangChain"  # ranked by 2026 demand


def test_a_trends_file_without_skills_is_refused():
    with pytest.raises(TrendsError):
        check_trends({"window": "2026-W31"})
    with pytest.raises(ValueError, match="no postings"):
        build_trends(_table(["Java"]), FeatureTable.empty(), "2026-W40")


def test_the_shipped_2025_profile_matches_the_committed_csv(kaggle_csv):
    """Built with the pipeline's own prepare + label steps from the committed CSV."""
    from scripts.build_monitoring_baseline import DEFAULT_OUT, build_profile

    committed = json.loads(DEFAULT_OUT.read_text())
    rebuilt = build_profile(kaggle_csv)
    assert committed["profile"] == rebuilt["profile"], "stale: run python scripts/build_monitoring_baseline.py"
    flags = committed["profile"]["flags"]
    assert committed["profile"]["documents"] == sum(committed["profile"]["class_counts"])
    assert 0 < flags["skill:LangChain"] < flags["skill:Python"] <= committed["profile"]["documents"]


def test_projection_marks_each_named_skill_once():
    table = project(["Python, python3 and PySpark; also Python again."], [1], [0.7])
    row = table.skills[0]
    assert row[SKILL_INDEX["Python"]] and row[SKILL_INDEX["Apache Spark"]]
    assert row.sum() == 2
    assert table.text_length[0] == len("Python, python3 and PySpark; also Python again.")
    assert np.isnat(table.timestamp[0])
