"""File drops: other scrapers feed the pipeline with a JSON array, JSONL/NDJSON or a CSV file.

Every reader returns plain dicts; `sources.detect_source` then decides which mapper applies.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from shared.errors import UserError

SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

# Descriptions run to tens of kB; the csv module's default 128 kB field cap is too tight for some dumps.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def drop_format(path: str | Path) -> str:
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unsupported file drop; use one of {', '.join(sorted(SUFFIXES))}")
    return fmt


def read_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    fmt = drop_format(path)
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    return {"json": _json_array, "jsonl": _json_lines, "csv": _csv_rows}[fmt](path, text)


def _json_array(path: Path, text: str) -> list[dict]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json drop that is really NDJSON is common enough to accept.
        try:
            return _json_lines(path, text)
        except UserError:
            raise UserError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise UserError(f"{path}: expected a JSON array of records")
    return [_as_record(path, item, index) for index, item in enumerate(payload, 1)]


def _json_lines(path: Path, text: str) -> list[dict]:
    records = []
    # Lines end at "\n" only: str.splitlines() also splits at U+2028, U+0085, ... that JSON strings may hold.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(_as_record(path, json.loads(line), number))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
    return records


def _csv_rows(path: Path, text: str) -> list[dict]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if not reader.fieldnames:
        raise UserError(f"{path}: the CSV has no header row")
    return [{key: (value or "") for key, value in row.items() if key is not None} for row in reader]


def _as_record(path: Path, item, position: int) -> dict:
    if not isinstance(item, dict):
        raise UserError(f"{path}: record {position} is a {type(item).__name__}, expected a JSON object")
    return item
