"""The ingest manifest: the list of raw batches a run produced, which `normalize` trusts and nothing else.

`ingest` deletes the previous manifest before it starts and writes the new one last (atomically),
so a failed run leaves raw files for inspection but no manifest pointing at a partial week.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloud.artifacts import write_json_atomic
from shared.errors import UserError
from shared.files import sha256_file

MANIFEST_NAME = "manifest.json"


@dataclass
class RawBatch:
    name: str
    path: str  # relative to the ingest directory
    sha256: str
    records: int
    origin: str  # "file:<path>" or "brightdata:<snapshot_id>"


def write_manifest(ingest_dir: Path, batches: list[RawBatch]) -> Path:
    path = ingest_dir / MANIFEST_NAME
    write_json_atomic(
        path,
        {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "batches": [asdict(batch) for batch in batches],
        },
    )
    return path


def read_manifest(ingest_dir: Path) -> list[RawBatch]:
    path = ingest_dir / MANIFEST_NAME
    if not path.is_file():
        raise UserError(f"{path}: no ingest manifest; run `careeredge-cloud ingest` first")
    try:
        batches = [RawBatch(**batch) for batch in json.loads(path.read_text("utf-8"))["batches"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable ingest manifest ({exc})") from None
    for batch in batches:
        raw = ingest_dir / batch.path
        if not raw.is_file():
            raise UserError(f"{raw}: listed in {MANIFEST_NAME} but missing; re-run ingest")
        if sha256_file(raw) != batch.sha256:
            raise UserError(f"{raw}: sha256 differs from {MANIFEST_NAME}; the raw batch changed after ingest")
    return batches
