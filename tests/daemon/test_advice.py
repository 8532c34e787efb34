"""Career advice: every line traces to the baseline counts (or the drift file when present)."""

from __future__ import annotations

import json

from device.advice import DemandTable, advise, normalise_profile
from scripts.build_skill_baseline import build_baseline


def test_committed_baseline_matches_the_committed_csv(kaggle_csv, repo_root):
    committed = json.loads((repo_root / "shared" / "skill_baseline_2025.json").read_text(encoding="utf-8"))
    rebuilt = build_baseline(kaggle_csv)
    assert committed["source_sha256"] == rebuilt["source_sha256"]
    assert committed["documents"] == rebuilt["documents"]
    assert committed["skills"] == rebuilt["skills"], "stale: run python scripts/build_skill_baseline.py"


def test_gaps_and_next_skills_cite_the_2025_counts():
    table = DemandTable.load()
    text = "Data scientist: Python, SQL, Tableau and LangChain. Statistics background."
    advice = advise(text, label=1, probability=0.93, profile_skills=["python", "sql"], table=table)
    assert advice.matched == ["Python", "SQL"]
    gaps = [gap.name for gap in advice.gaps]
    assert set(gaps) == {"Tableau", "LangChain", "Statistics"}
    count, total = table.baseline_share("Statistics", 1)
    assert gaps[0] == "Statistics"  # the most demanded gap first
    assert f"({count} of {total})" in advice.gaps[0].reason
    assert len(advice.next_skills) == 5
    assert [s.name for s in advice.next_skills[:3]] == gaps
    assert all(s.name not in ("Python", "SQL") for s in advice.next_skills)
    assert advice.profile_leaning["label"] == 1
    assert advice.demand_source["kind"] == "baseline"
    assert any("You have 2 of them" in line for line in advice.lines)


def test_new_technology_is_called_new_not_hidden():
    advice = advise("Systems programming in Mojo", label=0, probability=0.7, profile_skills=[])
    assert advice.gaps[0].name == "Mojo"
    assert "in none of the" in advice.gaps[0].reason and "new since then" in advice.gaps[0].reason


def test_drift_statistics_take_over_when_present(tmp_path):
    trends = tmp_path / "skill_trends.json"
    trends.write_text(
        json.dumps(
            {
                "generated_at": "2026-03-02T00:00:00Z",
                "window": "2026-W09",
                "documents": 900,
                "skills": {
                    "MCP": {"share": 0.20, "baseline_share": 0.02},
                    "Hadoop": {"share": 0.01, "baseline_share": 0.08},
                },
            }
        )
    )
    table = DemandTable.load(trends)
    advice = advise("We use Hadoop.", label=1, probability=0.8, profile_skills=["Hadoop"], table=table)
    assert advice.demand_source["kind"] == "drift" and "2026-W09" in advice.demand_source["description"]
    assert [s.name for s in advice.next_skills] == ["MCP"]  # only rising skills are recommended
    assert "up from 2%" in advice.next_skills[0].reason


def test_unreadable_drift_file_falls_back_to_the_baseline(tmp_path):
    broken = tmp_path / "skill_trends.json"
    broken.write_text("{not json")
    assert DemandTable.load(broken).source["kind"] == "baseline"


def test_profile_normalisation():
    assert normalise_profile(["pytorch, K8s", "Gen AI", "", "knitting"]) == (
        ["PyTorch", "Kubernetes", "Generative AI"],
        ["knitting"],
    )
