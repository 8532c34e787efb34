"""Write-then-rename for the raw bytes and JSONL files ingest produces.

Directories and JSON go through `cloud.artifacts` (atomic_directory, write_json_atomic); this adds
the two shapes it lacks. A crash mid-write leaves only a `.tmp-*` sibling, which no step reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    lines = (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
    return atomic_write_bytes(path, "".join(lines).encode("utf-8"))
