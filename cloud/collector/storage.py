"""Where the collector puts what the fleet sends. SQLite by default, behind a narrow interface.

The collector only ever calls the four methods of `CollectorStorage`; a BigQuery implementation
(streaming inserts keyed by `uuid` with `insertId` for de-duplication) slots in by implementing them.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    uuid TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT,
    model_name TEXT,
    model_version TEXT,
    text_sha256 TEXT,
    text TEXT,
    snippet TEXT,
    label INTEGER NOT NULL,
    label_name TEXT NOT NULL,
    p0 REAL NOT NULL,
    p1 REAL NOT NULL,
    latency_ms REAL
);
CREATE INDEX IF NOT EXISTS predictions_device ON predictions(device_id, created_at);
CREATE TABLE IF NOT EXISTS ota_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    event TEXT NOT NULL,
    channel TEXT,
    sequence INTEGER,
    version TEXT,
    sha256 TEXT,
    reason TEXT,
    detail TEXT,
    at TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped_on_device (
    device_id TEXT PRIMARY KEY,
    rows INTEGER NOT NULL
);
"""


class CollectorStorage(Protocol):
    def store_predictions(self, batch: dict) -> tuple[int, int]:
        """Store a validated prediction batch; return (stored, duplicates). Idempotent per uuid."""

    def store_ota_event(self, event: dict) -> None: ...

    def count_rejection(self, reason: str) -> None: ...

    def close(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SqliteStorage:
    """One SQLite file; safe to share between several collectors (the uuid primary key de-duplicates)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # paho calls us from its network thread; a lock keeps the one connection single-user.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.commit()

    def store_predictions(self, batch: dict) -> tuple[int, int]:
        received_at = _now()
        rows = [
            (
                r["uuid"],
                batch["device_id"],
                batch["batch_id"],
                received_at,
                r["created_at"],
                r.get("source"),
                r.get("model_name"),
                r.get("model_version"),
                r.get("text_sha256"),
                r.get("text"),
                r.get("snippet"),
                r["label"],
                r["label_name"],
                float(r["probabilities"][0]),
                float(r["probabilities"][1]),
                r.get("latency_ms"),
            )
            for r in batch["records"]
        ]
        with self._lock, self._db:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            stored = self._db.total_changes - before
            if batch.get("dropped_rows"):
                self._db.execute(
                    "INSERT INTO dropped_on_device VALUES (?, ?) "
                    "ON CONFLICT(device_id) DO UPDATE SET rows = rows + excluded.rows",
                    (batch["device_id"], batch["dropped_rows"]),
                )
        return stored, len(rows) - stored

    def store_ota_event(self, event: dict) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO ota_events (device_id, event, channel, sequence, version, sha256, reason, detail, at,"
                " received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    event["device_id"],
                    event["event"],
                    event.get("channel"),
                    event.get("sequence"),
                    event.get("version"),
                    event.get("sha256"),
                    event.get("reason"),
                    event.get("detail"),
                    event["at"],
                    _now(),
                ),
            )

    def count_rejection(self, reason: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO rejections VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET count = count + 1",
                (reason,),
            )

    # Read side, used by the CLI summary, the demo and the tests (not part of the write interface).
    def prediction_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]

    def prediction_uuids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT uuid FROM predictions")}

    def rows_dropped_on_devices(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT device_id, rows FROM dropped_on_device ORDER BY device_id"))

    def rejection_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT reason, count FROM rejections ORDER BY reason"))

    def ota_events(self) -> list[dict]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM ota_events ORDER BY id")
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor]

    def close(self) -> None:
        with self._lock:
            self._db.close()
