"""Reading the labelled 2025 splits (`data/processed/splits/{train,val,test}.csv`) the `label` stage writes."""

from __future__ import annotations

import csv
from pathlib import Path

from shared.errors import UserError


def read_split(path: Path) -> tuple[list[str], list[int]]:
    """Texts and labels of one split CSV written by the `label` stage."""
    if not path.is_file():
        raise UserError(f"split not found: {path} (run `careeredge-cloud label` first)")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]
