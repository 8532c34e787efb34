"""The title taxonomy on the real 2025 titles (snapshot) and the 2026 ATS titles (coverage)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from shared.labels import DATA_SCIENCE, SOFTWARE_ENGINEERING, TITLE_RULES, classify_title
from shared.text import clean_text

SNAPSHOT = Path(__file__).with_name("title_mapping_2025.json")


def _kaggle_titles(kaggle_csv: Path) -> list[str]:
    with kaggle_csv.open(encoding="utf-8", newline="") as handle:
        return [clean_text(row["positionName"]) for row in csv.DictReader(handle)]


def test_every_distinct_2025_title_matches_the_reviewed_snapshot(kaggle_csv):
    """A rule change that moves any real 2025 title shows up here as a diff to review."""
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    titles = sorted(set(_kaggle_titles(kaggle_csv)))
    assert sorted(snapshot) == titles
    moved = {t: (snapshot[t], classify_title(t)) for t in titles if classify_title(t) != snapshot[t]}
    assert not moved, f"titles whose class changed (snapshot, now): {moved}"


def test_at_least_85_percent_of_2025_rows_are_mapped(kaggle_csv):
    labels = [classify_title(t) for t in _kaggle_titles(kaggle_csv)]
    coverage = sum(label is not None for label in labels) / len(labels)
    assert coverage >= 0.85, f"only {coverage:.1%} of 2025 rows mapped"
    counts = Counter(labels)
    assert counts[SOFTWARE_ENGINEERING] > 100 and counts[DATA_SCIENCE] > 100


@pytest.mark.parametrize(
    "title, expected",
    [
        ("Senior Data Scientist", DATA_SCIENCE),
        ("Machine Learning Engineer", SOFTWARE_ENGINEERING),
        ("Data Engineer", SOFTWARE_ENGINEERING),
        ("Analytics Engineer", DATA_SCIENCE),
        ("Applied Scientist II", DATA_SCIENCE),
        ("Research Scientist, Machine Learning (PhD)", DATA_SCIENCE),
        ("AI Engineer", SOFTWARE_ENGINEERING),
        ("Data Science Manager", DATA_SCIENCE),
        ("Software Engineering Manager, Machine Learning", SOFTWARE_ENGINEERING),
        ("Data Scientist Quality Engineer", DATA_SCIENCE),
        ("AI Tutor, Economics Specialist (contract)", None),
        ("Head of AI Strategy", None),
        ("Account Executive", None),
        ("", None),
        (None, None),
    ],
)
def test_documented_decisions_for_contested_titles(title, expected):
    assert classify_title(title) == expected


def test_rules_are_an_ordered_table_with_reasons():
    assert len(TITLE_RULES) >= 8
    assert all(rule.reason for rule in TITLE_RULES)


def test_2026_ats_titles_coverage_and_agreement_on_unambiguous_titles(shared_data, capsys):
    """The 2026 ATS feed holds every function (sales, legal, ...), so coverage is reported, while on
    titles that plainly say "software engineer" or "data scientist" the taxonomy must agree."""
    path = shared_data / "ats_titles_2026_ConorsCode_open-jobs-data" / "jobs_2026-08-05.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        titles = [row["title"] for row in csv.DictReader(handle)]
    labels = [classify_title(t) for t in titles]
    coverage = sum(label is not None for label in labels) / len(titles)
    plain_swe = [t for t in titles if re.search(r"\bsoftware engineer\b", t, re.I)]
    plain_ds = [t for t in titles if re.search(r"\bdata scientist\b", t, re.I)]
    swe_agree = sum(classify_title(t) == SOFTWARE_ENGINEERING for t in plain_swe) / len(plain_swe)
    ds_agree = sum(classify_title(t) == DATA_SCIENCE for t in plain_ds) / len(plain_ds)
    with capsys.disabled():
        print(
            f"\n2026 ATS titles: {len(titles)} rows, coverage {coverage:.1%}, "
            f"'software engineer' -> SWE {swe_agree:.1%} (n={len(plain_swe)}), "
            f"'data scientist' -> DS {ds_agree:.1%} (n={len(plain_ds)})"
        )
    assert swe_agree >= 0.95 and ds_agree >= 0.95
    assert len(plain_swe) > 500
