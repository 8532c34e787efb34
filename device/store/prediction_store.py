"""The durable prediction buffer every front (CLI, web, TUI, API) writes through.

Concurrency model: the web daemon, a TUI and a CLI may all write the same file at once, from
different processes. SQLite in WAL mode lets readers run while one writer writes; writers queue on
the database lock. Every write here is one short transaction (a single INSERT, or one UPDATE/DELETE
inside BEGIN IMMEDIATE), and each connection waits up to `busy_timeout_ms` for the lock instead of
failing, so nobody is locked out for longer than another writer's few milliseconds.

Durability: a write is committed before `insert` returns, so once the API has answered 200 the row
survives the process being killed. With `synchronous = "full"` (the default) each commit also
fsyncs the WAL, so the row survives a power cut too. `"normal"` skips that fsync: still safe against
crashes and never corrupt, but a power cut can drop the commits since the last checkpoint, rows
already answered 200 (docs/reliability.md has the measured cost of each).

Within one process the store is shared by waitress' worker threads: one connection, guarded by a
lock (SQLite serialises writers anyway, and reads here are a few milliseconds).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
import threading
import uuid as uuid_module
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from device.store.migrate import MIGRATIONS_DIR, migrate, schema_version
from shared.sqlite_wal import enable_wal

log = logging.getLogger(__name__)


SOURCES = ("cli", "web", "tui", "api")
PRIVACY_MODES = ("full", "hash")
SYNCHRONOUS_MODES = ("full", "normal")
SNIPPET_CHARS = 120
TABLE = "predictions"


class StoreError(RuntimeError):
    """The store could not be opened or read."""


class StoreWriteError(StoreError):
    """A write failed (disk full, read-only file, I/O error). The prediction itself is still valid."""


class IdConflict(StoreError):
    """A client reused a prediction id for a different text: the stored row keeps the first one."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class PredictionStore:
    def __init__(
        self,
        path: str | Path,
        privacy: str = "full",
        busy_timeout_ms: int = 5000,
        migrations_dir: Path = MIGRATIONS_DIR,
        synchronous: str = "full",
    ):
        if privacy not in PRIVACY_MODES:
            raise ValueError(f"privacy must be one of {PRIVACY_MODES}, got {privacy!r}")
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
        self.path = Path(path)
        self.privacy = privacy
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            enable_wal(conn, busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self.schema_version = migrate(conn, self.path, migrations_dir)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open prediction store {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._queue: list[_PendingInsert] = []  # inserts waiting for the next group commit
        self._queue_lock = threading.Lock()

    @classmethod
    def from_config(cls, store: Any) -> PredictionStore:
        """The store a `[store]` config section (device.config.StoreConfig) describes."""
        return cls(store.path, privacy=store.privacy, synchronous=store.synchronous)

    # --- writing -----------------------------------------------------------------------------
    def insert(self, record: dict[str, Any]) -> str:
        """Store one prediction, committed before it returns. Returns its uuid. A uuid stored before with
        the same text is left as it is (a retry: idempotent); with a different text it raises IdConflict.

        Group commit: inserts that arrive while another commit is running wait for the write lock
        together and are committed in one transaction (one fsync with synchronous = "full"), so
        durability costs one fsync per burst, not one per request. Each insert still returns only
        once its own row is committed, and a row that cannot be stored fails alone.

        `record` holds: text, source, model_name, model_version, label, label_name, latency_ms,
        p0/p1 (or probabilities=[p0, p1]); optional uuid, created_at, input_notes.
        """
        pending = _PendingInsert(self._row(record))
        with self._queue_lock:
            self._queue.append(pending)
        with self._lock:
            if not pending.done:  # no earlier writer took it along: commit everything that waits
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        if pending.error is not None:
            raise pending.error
        return pending.row["uuid"]

    def _commit_group(self, group: list[_PendingInsert]) -> None:
        """One transaction for the group. A row that cannot be bound fails alone; a database error
        (full disk, I/O error, lock timeout) fails the whole group, which is rolled back."""
        try:
            with self._write_transaction() as conn:
                for item in group:
                    try:
                        inserted = conn.execute(_insert_sql(tuple(item.row)), list(item.row.values())).rowcount
                    except UnicodeEncodeError as exc:  # text SQLite cannot hold (a lone surrogate)
                        item.fail(StoreWriteError(f"could not store prediction {item.row['uuid']}: {exc}"))
                        continue
                    if not inserted:
                        stored = conn.execute(f"SELECT text_sha256 FROM {TABLE} WHERE uuid = ?", [item.row["uuid"]])
                        existing = stored.fetchone()
                        if existing is not None and existing[0] != item.row["text_sha256"]:
                            item.fail(
                                IdConflict(f"id {item.row['uuid']} was already used for a different text; use a new id")
                            )
        except StoreWriteError as exc:  # BEGIN, a statement or COMMIT failed: rolled back, the whole group fails
            cause = exc.__cause__ or exc
            for item in group:
                if item.error is None:
                    item.fail(StoreWriteError(f"could not store prediction {item.row['uuid']} in {self.path}: {cause}"))
        for item in group:
            item.done = True

    def insert_prediction(
        self,
        prediction: Any,
        text: str,
        source: str,
        model_name: str,
        uuid: str | None = None,
        input_notes: Sequence[str] = (),
    ) -> str:
        """Store a runtime `Prediction` (device.runtime.base) made from `text`."""
        return self.insert(
            {
                "uuid": uuid,
                "text": text,
                "source": source,
                "model_name": model_name,
                "model_version": prediction.model_version,
                "label": prediction.label,
                "label_name": prediction.label_name,
                "probabilities": prediction.probabilities,
                "latency_ms": prediction.latency_ms,
                "input_notes": list(input_notes),
            }
        )

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        text = record["text"]
        source = record["source"]
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        p0, p1 = record["probabilities"] if "probabilities" in record else (record["p0"], record["p1"])
        notes = record.get("input_notes") or None
        return {
            "uuid": str(uuid_module.UUID(str(record["uuid"]))) if record.get("uuid") else str(uuid_module.uuid4()),
            "created_at": record.get("created_at") or utc_now(),
            "source": source,
            "model_name": record["model_name"],
            "model_version": record["model_version"],
            "text": text if self.privacy == "full" else None,
            "text_sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
            "snippet": make_snippet(text),
            "label": int(record["label"]),
            "label_name": record["label_name"],
            "p0": float(p0),
            "p1": float(p1),
            "latency_ms": float(record["latency_ms"]),
            "synced_at": None,
            "input_notes": json.dumps(list(notes)) if notes else None,
        }

    def mark_synced(self, uuids: Iterable[str], at: str | None = None) -> int:
        """Flag rows as delivered to the cloud. Returns how many rows changed."""
        uuids = list(uuids)
        if not uuids:
            return 0
        at = at or utc_now()
        changed = 0
        with self._write_transaction():
            for start in range(0, len(uuids), 500):  # stay under SQLite's bound-variable limit
                chunk = uuids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cursor = self._conn.execute(
                    f"UPDATE {TABLE} SET synced_at = ? WHERE synced_at IS NULL AND uuid IN ({marks})", [at, *chunk]
                )
                changed += cursor.rowcount
        return changed

    def prune(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete synced rows older than `retention_days`. Unsynced rows are never deleted.

        `retention_days = 0` means keep everything. Returns the number of rows deleted.
        """
        if retention_days <= 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        cutoff_text = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._write_transaction():
            cursor = self._conn.execute(
                f"DELETE FROM {TABLE} WHERE synced_at IS NOT NULL AND created_at < ?", [cutoff_text]
            )
        log.info("store.pruned", extra={"fields": {"deleted": cursor.rowcount, "before": cutoff_text}})
        return cursor.rowcount

    def _write_transaction(self):
        return _ImmediateTransaction(self._conn, self._lock, self.path)

    def record_shadow(self, uuid: str, model_name: str, model_version: str, probabilities: Sequence[float]) -> bool:
        """Attach a shadow model's answer to a stored prediction (a row not yet synced, or already
        synced: the shadow is kept either way). Returns whether the row exists."""
        try:
            with self._lock:
                cursor = self._conn.execute(
                    f"UPDATE {TABLE} SET shadow_model = ?, shadow_version = ?, shadow_p0 = ?, shadow_p1 = ? WHERE uuid = ?",
                    [model_name, str(model_version), float(probabilities[0]), float(probabilities[1]), uuid],
                )
        except sqlite3.Error as exc:
            raise StoreWriteError(f"could not store the shadow prediction of {uuid} in {self.path}: {exc}") from exc
        return cursor.rowcount == 1

    # --- reading -----------------------------------------------------------------------------
    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, args)]

    def _scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()[0]

    def unsynced(self, limit: int = 500) -> list[dict]:
        """Oldest undelivered predictions first (what the sync agent ships next)."""
        return self._rows(f"SELECT * FROM {TABLE} WHERE synced_at IS NULL ORDER BY created_at, rowid LIMIT ?", [limit])

    def count_unsynced(self) -> int:
        return self._scalar(f"SELECT COUNT(*) FROM {TABLE} WHERE synced_at IS NULL")

    def recent(self, limit: int = 20, offset: int = 0, label: int | None = None) -> list[dict]:
        """Newest first, optionally only one label (history pages)."""
        where, args = ("WHERE label = ?", [label]) if label is not None else ("", [])
        return self._rows(
            f"SELECT * FROM {TABLE} {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )

    def count(self, label: int | None = None) -> int:
        if label is None:
            return self._scalar(f"SELECT COUNT(*) FROM {TABLE}")
        return self._scalar(f"SELECT COUNT(*) FROM {TABLE} WHERE label = ?", [label])

    def get(self, uuid: str) -> dict | None:
        rows = self._rows(f"SELECT * FROM {TABLE} WHERE uuid = ?", [uuid])
        return rows[0] if rows else None

    def size_bytes(self) -> int:
        """The database file plus its WAL (what the data costs on the SD card)."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            candidate = self.path.with_name(self.path.name + suffix)
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    def stats(self) -> dict:
        by_label = {
            str(row["label"]): row["n"]
            for row in self._rows(f"SELECT label, COUNT(*) AS n FROM {TABLE} GROUP BY label")
        }
        last = self._scalar(f"SELECT MAX(created_at) FROM {TABLE}")
        return {
            "path": str(self.path),
            "schema_version": schema_version(self._conn),
            "privacy": self.privacy,
            "rows": sum(by_label.values()),
            "by_label": by_label,
            "unsynced": self.count_unsynced(),
            "size_bytes": self.size_bytes(),
            "last_prediction_at": last,
        }

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's own connection, for per-connection settings (e.g. a test's `max_page_count`)."""
        return self._conn

    def integrity_check(self) -> str:
        return self._scalar("PRAGMA integrity_check")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PredictionStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@functools.lru_cache(maxsize=8)
def _insert_sql(columns: tuple[str, ...]) -> str:
    return f"INSERT OR IGNORE INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


class _PendingInsert:
    """One row waiting for a group commit, and what became of it."""

    __slots__ = ("row", "done", "error")

    def __init__(self, row: dict[str, Any]):
        self.row, self.done, self.error = row, False, None

    def fail(self, error: StoreError) -> None:
        self.error = error


class _ImmediateTransaction:
    """BEGIN IMMEDIATE ... COMMIT under the in-process lock: take the write lock up front, so a
    multi-statement write never fails half-way on a lock upgrade."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, path: Path):
        self.conn, self.lock, self.path = conn, lock, path

    def __enter__(self):
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self.lock.release()
            raise StoreWriteError(f"could not write to {self.path}: {exc}") from exc
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as commit_error:
                    self._rollback()
                    raise StoreWriteError(f"could not write to {self.path}: {commit_error}") from commit_error
            else:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise StoreWriteError(f"could not write to {self.path}: {exc}") from exc
        finally:
            self.lock.release()
        return False

    def _rollback(self) -> None:
        if self.conn.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
            self.conn.execute("ROLLBACK")
