"""Reader for the Kaggle "700+ JOBs Data of AI & Data Fields 2025" CSV (our frozen 2025 baseline).

Strict on purpose: a file that is not UTF-8, lacks a column, or has an empty description is a
user error with one clear line, not a silently smaller training set.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from shared.errors import UserError
from shared.posting import JobPosting, make_posting

REQUIRED_COLUMNS = ("positionName", "description", "company", "location", "url")
SOURCE = "kaggle_2025"


def read_kaggle_csv(path: Path) -> list[JobPosting]:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{path} is missing required column(s): {', '.join(missing)}")
    postings = []
    for line_no, row in enumerate(reader, start=2):
        if not (row.get("description") or "").strip():
            raise UserError(f"{path}:{line_no}: empty description (title {row.get('positionName')!r})")
        postings.append(make_posting(
            SOURCE, source_id=row["url"] or f"row-{line_no}", title=row["positionName"],
            description=row["description"], company=row.get("company") or "",
            location=row.get("location") or "", url=row.get("url") or ""))
    if not postings:
        raise UserError(f"{path} has a header but no rows")
    return postings


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"input CSV not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
