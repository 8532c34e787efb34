"""Real 2025 postings for the LLM and cost tests: the committed Kaggle CSV, labelled by the title taxonomy,
written out the way `label` (splits/test.csv) and `normalize` (postings.jsonl) write them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cloud.llm.runner import LabelledPosting
from shared.labels import classify_title
from shared.posting import make_posting
from tests.conftest import KAGGLE_CSV


def labelled_2025(limit: int | None = None) -> list[tuple[str, str, str, int]]:
    """(id, title, cleaned description, label) of the CSV's rows the taxonomy places, in file order."""
    rows = []
    with KAGGLE_CSV.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle)):
            label = classify_title(row["positionName"])
            posting = make_posting("kaggle_2025", f"row-{number}", row["positionName"], row["description"])
            if label is None or not posting.description:
                continue
            rows.append((posting.source_id, posting.title, posting.description, label))
            if limit and len(rows) >= limit:
                break
    return rows


@pytest.fixture(scope="session")
def real_postings() -> list[LabelledPosting]:
    return [LabelledPosting(id_, text, label) for id_, _, text, label in labelled_2025(40)]


def write_splits_and_stream(root: Path, test_rows: int = 12, stream_rows: int = 60) -> tuple[Path, Path]:
    """`root/splits/test.csv` from the first rows, `root/normalized/postings.jsonl` from later ones, filed
    under a 2026 source so the evaluation split (`stream_split`) holds out about 30 % of them."""
    rows = labelled_2025(test_rows + stream_rows)
    splits, normalized = root / "splits", root / "normalized"
    splits.mkdir(parents=True)
    normalized.mkdir(parents=True)
    with (splits / "test.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "text", "label"])
        writer.writerows(rows[:test_rows])
    with (normalized / "postings.jsonl").open("w", encoding="utf-8") as handle:
        for id_, title, text, _ in rows[test_rows:]:
            record = make_posting("linkedin_uk_2026", id_, title, text).to_record()
            handle.write(json.dumps(record) + "\n")
    return splits, normalized


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    from tests.support.tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("llm") / "tiny_model_v1")
