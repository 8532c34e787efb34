"""Files that must survive a crash, and their digests.

`atomic_write_*` writes a temporary sibling, fsyncs it, renames it over the target and fsyncs the
directory, so after a power cut the path holds either the old bytes or the new ones, never a
truncated mix, and the rename itself is on disk. Every state file, manifest and pipeline output
that a later reader trusts goes through here. Stdlib only: the device imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

CHUNK_BYTES = 1 << 20


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new entry in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename still happened
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` in one durable rename; creates the parent directory."""
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
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: object, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=indent) + "\n")


def atomic_write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    lines = (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
    return atomic_write_text(path, "".join(lines))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
