"""A resumable, chunked download written straight to disk.

    models_dir/downloads/<sha256>.part            the packed bundle, preallocated, filled chunk by chunk
    models_dir/downloads/<sha256>.progress.json   which chunk indices are on disk (and fsynced)

Each chunk is checked against the per-chunk sha256 of the signed manifest before it is written, at
its offset, then the data is fsynced before the progress file records it. So after a crash or a
kill the progress file never claims bytes that are not on disk, and a restart fetches only the
missing chunks. Memory stays at one chunk whatever the bundle size.

A chunk that fails its check is a property of that copy (a bit flip, a truncated or forged retained
message, a sector that rotted on disk), not of the release: those reasons are TRANSIENT_REASONS and
the updater fetches the chunk again. Only what the signed bytes themselves prove wrong rejects a release.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from shared.files import atomic_write_json, sha256_file

TRANSIENT_REASONS = frozenset({"chunk_corrupt", "truncated_chunk", "oversized_chunk"})


class TransferRejected(Exception):
    """The transfer cannot produce the signed bundle. `reason` is reported to the cloud."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ChunkedDownload:
    def __init__(self, downloads_dir: Path, manifest: dict):
        self.manifest = manifest
        self.size = manifest["size"]
        self.chunk_size = manifest["chunk_size"]
        self.chunk_sha256: list[str] = manifest["chunks"]
        downloads_dir.mkdir(parents=True, exist_ok=True)
        self.part_path = downloads_dir / f"{manifest['sha256']}.part"
        self.progress_path = downloads_dir / f"{manifest['sha256']}.progress.json"
        self.received: set[int] = self._load_progress()
        self.resumed_with = len(self.received)
        if not self.received:
            with open(self.part_path, "wb") as handle:
                handle.truncate(self.size)  # sparse preallocation: offsets are valid from the start
        self._fd = os.open(self.part_path, os.O_RDWR)

    def _load_progress(self) -> set[int]:
        try:
            state = json.loads(self.progress_path.read_text())
            if self.part_path.stat().st_size != self.size:
                return set()
            return {i for i in state["received"] if 0 <= i < len(self.chunk_sha256)}
        except (OSError, ValueError, KeyError, TypeError):
            return set()

    @property
    def total_chunks(self) -> int:
        return len(self.chunk_sha256)

    def missing(self) -> list[int]:
        return [i for i in range(self.total_chunks) if i not in self.received]

    @property
    def complete(self) -> bool:
        return len(self.received) == self.total_chunks

    def expected_length(self, index: int) -> int:
        return min(self.chunk_size, self.size - index * self.chunk_size)

    def write_chunk(self, index: int, data: bytes) -> bool:
        """Check and store one chunk. False for a chunk already on disk; raises TransferRejected."""
        if not 0 <= index < self.total_chunks:
            raise TransferRejected("chunk_index", f"chunk {index} is outside 0..{self.total_chunks - 1}")
        if index in self.received:
            return False
        if len(data) != self.expected_length(index):
            raise TransferRejected(
                "truncated_chunk" if len(data) < self.expected_length(index) else "oversized_chunk",
                f"chunk {index} has {len(data)} bytes, the signed manifest says {self.expected_length(index)}",
            )
        if hashlib.sha256(data).hexdigest() != self.chunk_sha256[index]:
            raise TransferRejected("chunk_corrupt", f"chunk {index} does not match its signed sha256")
        os.pwrite(self._fd, data, index * self.chunk_size)
        os.fsync(self._fd)
        self.received.add(index)
        self._save_progress()
        return True

    def _save_progress(self) -> None:
        atomic_write_json(
            self.progress_path, {"sha256": self.manifest["sha256"], "received": sorted(self.received)}, indent=None
        )

    def verify(self) -> Path:
        """Whole-file size and sha256 against the signed manifest (streamed). Returns the file.

        On a mismatch each chunk on disk is checked again: chunks that no longer match are forgotten
        (transient `chunk_corrupt`, fetched again); if every chunk matches, the signed manifest itself is
        inconsistent (`sha256_mismatch`, a property of the release)."""
        size = self.part_path.stat().st_size
        if size != self.size:
            raise TransferRejected("size_mismatch", f"downloaded {size} bytes, manifest says {self.size}")
        if sha256_file(self.part_path) == self.manifest["sha256"]:
            return self.part_path
        rotten = [i for i in sorted(self.received) if not self._chunk_on_disk_matches(i)]
        if rotten:
            self.received.difference_update(rotten)
            self._save_progress()
            raise TransferRejected("chunk_corrupt", f"chunks {rotten} changed on disk since they were written")
        raise TransferRejected("sha256_mismatch", "the assembled bundle does not match the signed sha256")

    def _chunk_on_disk_matches(self, index: int) -> bool:
        data = os.pread(self._fd, self.expected_length(index), index * self.chunk_size)
        return hashlib.sha256(data).hexdigest() == self.chunk_sha256[index]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        self.close()
        self.part_path.unlink(missing_ok=True)
        self.progress_path.unlink(missing_ok=True)
