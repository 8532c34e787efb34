"""The normalized postings file: what `careeredge-cloud normalize` writes and every later step reads.

Kept apart from the normalizers so that reading the stream (pseudo-labels, training, evaluation,
distillation) does not depend on how raw batches are mapped; `dvc repro` then reruns those steps
only when the postings themselves change.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.errors import UserError
from shared.posting import JobPosting

POSTINGS = "postings.jsonl"
QUARANTINE = "quarantine.jsonl"
REPORT = "report.json"


def load_postings(normalized_dir: str | Path) -> list[JobPosting]:
    """Read what `normalize` wrote (the next steps' entry point)."""
    path = Path(normalized_dir) / POSTINGS
    if not path.is_file():
        raise UserError(f"{path}: no normalized postings; run `careeredge-cloud normalize` first")
    with open(path, encoding="utf-8") as handle:
        return [JobPosting.from_record(json.loads(line)) for line in handle if line.strip()]
