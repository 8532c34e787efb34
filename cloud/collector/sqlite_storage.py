"""Collector storage in one SQLite file: the default for one machine.

Several collector processes may share the file (WAL mode; writers queue on the database lock for
up to `busy_timeout_s`, then the write counts as an outage and is retried). `synchronous=FULL`:
the collector acknowledges a message to the broker right after the commit, so the commit must
survive a power cut, or an acknowledged batch could vanish.

Before a migration changes a file that holds data, it is copied with SQLite's online backup API to
`<file>.v<N>.bak` (N: the version it had), as the device store does.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from cloud.collector import schema
from cloud.collector.storage_api import (
    PREDICTION_COLUMNS,
    DeadLetter,
    StorageReads,
    StorageUnavailable,
    StoredBatch,
    UnstorableMessage,
    iso_utc,
    now_utc,
    prediction_values,
    shadow_values,
    skew_values,
    utc_timestamp,
)
from shared.migrations import sqlite_statements
from shared.sqlite_wal import enable_wal

log = logging.getLogger("careeredge.collector")

# Errors that say the values cannot be stored (retrying cannot help), as opposed to
# sqlite3.OperationalError & co: locked, disk full, I/O error, read-only file (retry later).
_VALUE_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    OverflowError,
    UnicodeEncodeError,
    ValueError,
    TypeError,
)

_INSERT_PREDICTION = (
    f"INSERT OR IGNORE INTO predictions ({', '.join(PREDICTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(PREDICTION_COLUMNS))})"
)


class SqliteStorage(StorageReads):
    DELAY_SQL = "SELECT (julianday(received_at) - julianday(created_at)) * 86400.0 FROM predictions"
    SCHEMA_VERSION_SQL = "PRAGMA user_version"
    PARAM = "?"
    engine = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 30.0, open_now: bool = True):
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        self.busy_timeout_s = busy_timeout_s
        # paho and the collector's writer thread both reach the one connection; a lock keeps it single-user.
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if open_now:
            self.open()

    def open(self) -> None:
        with self._lock:
            if self._db is not None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
                )
                enable_wal(db, self.busy_timeout_s)
                db.execute("PRAGMA synchronous=FULL")
                self._migrate(db)
            except (sqlite3.Error, OSError) as exc:
                raise StorageUnavailable(f"{self.description}: {exc}") from exc
            self._db = db

    def _migrate(self, db: sqlite3.Connection) -> None:
        current = db.execute("PRAGMA user_version").fetchone()[0]
        todo = schema.pending(self.engine, current, self.description)
        if not todo:
            return
        holds_tables = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0
        if holds_tables:
            backup = self.path.with_name(f"{self.path.name}.v{current}.bak")
            with sqlite3.connect(backup) as copy:
                db.backup(copy)
            copy.close()
            log.info("backed up %s (schema version %d) to %s before migrating", self.path, current, backup)
        db.execute("BEGIN IMMEDIATE")
        try:
            current = db.execute("PRAGMA user_version").fetchone()[0]  # another collector may have migrated
            for migration in schema.pending(self.engine, current, self.description):
                for statement in sqlite_statements(migration.sql):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {migration.version}")
                log.info("collector store %s migrated to schema version %d", self.path, migration.version)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write(self):
        """The connection inside one IMMEDIATE transaction, driver errors mapped to what they mean."""
        return _WriteTransaction(self)

    # --- writes ----------------------------------------------------------------------------------

    def store_predictions(self, batch: dict) -> StoredBatch:
        return self.store_prediction_batches([batch])[0]

    def store_prediction_batches(self, batches: list[dict]) -> list[StoredBatch]:
        received_at = iso_utc(now_utc())
        prepared = [
            (batch, [(*row[:3], received_at, iso_utc(row[4]), *row[5:]) for row in prediction_values(batch)])
            for batch in batches
        ]
        results = []
        with self._write() as db:
            for batch, rows in prepared:
                dropped = int(batch.get("dropped_rows") or 0)
                before = db.total_changes
                db.executemany(_INSERT_PREDICTION, rows)
                stored = db.total_changes - before
                new_batch = db.execute(
                    "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                    (batch["device_id"], batch["batch_id"], received_at, len(rows), stored, dropped),
                ).rowcount
                if new_batch and dropped:  # a redelivered batch must not count its dropped rows twice
                    db.execute(
                        "INSERT INTO dropped_on_device VALUES (?, ?) "
                        "ON CONFLICT(device_id) DO UPDATE SET rows = rows + excluded.rows",
                        (batch["device_id"], dropped),
                    )
                results.append(StoredBatch(batch["device_id"], batch["batch_id"], len(rows), stored))
        return results

    def store_ota_event(self, event: dict) -> None:
        values = (
            event["device_id"],
            event["event"],
            event.get("channel"),
            event.get("sequence"),
            event.get("version"),
            event.get("sha256"),
            event.get("reason"),
            event.get("detail"),
        )
        with self._write() as db:
            db.execute(
                "INSERT INTO ota_events (device_id, event, channel, sequence, version, sha256, reason, detail, at,"
                " received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*values, iso_utc(utc_timestamp(event["at"])), iso_utc(now_utc())),
            )

    def store_dead_letter(self, letter: DeadLetter) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO dead_letters (received_at, collector, topic, reason, detail, payload_bytes,"
                " payload_sha256, payload) VALUES (?,?,?,?,?,?,?,?)",
                (
                    iso_utc(now_utc()),
                    letter.collector,
                    letter.topic,
                    letter.reason,
                    letter.detail,
                    len(letter.payload),
                    letter.payload_sha256,
                    letter.kept_payload,
                ),
            )
            db.execute(
                "INSERT INTO rejections VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET count = count + 1",
                (letter.reason,),
            )

    def store_monitoring(self, batches: list[dict]) -> None:
        shadows = [row for batch in batches for row in shadow_values(batch)]
        skews = [values for batch in batches if (values := skew_values(batch)) is not None]
        if not shadows and not skews:
            return
        received_at = iso_utc(now_utc())
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO prediction_shadows VALUES (?, ?, ?, ?, ?, ?)", shadows)
            db.executemany(
                "INSERT INTO device_skew VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_id, window_label) DO UPDATE"
                " SET computed_at = excluded.computed_at, received_at = excluded.received_at,"
                " documents = excluded.documents, alerts = excluded.alerts, summary = excluded.summary"
                " WHERE excluded.computed_at > device_skew.computed_at",
                [(d, w, iso_utc(at), received_at, n, a, summary) for d, w, at, n, a, summary in skews],
            )

    # --- read side (CLI summary, demo, tests, bench; not part of the write interface) -------------

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            if self._db is None:
                raise StorageUnavailable(f"{self.description} is not open")
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"{self.description}: {exc}") from exc

    def _read_chunks(self, sql: str, params: tuple, size: int) -> Iterator[list[tuple]]:
        # One statement, read in steps: the statement holds its read snapshot (WAL) until the last
        # row; the lock is taken per step, so the caller's work between chunks never blocks writers
        # sharing this connection.
        with self._lock:
            if self._db is None:
                raise StorageUnavailable(f"{self.description} is not open")
            cursor = self._db.execute(sql, params)
        try:
            while True:
                with self._lock:
                    rows = cursor.fetchmany(size)
                if not rows:
                    return
                yield rows
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"{self.description}: {exc}") from exc
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class _WriteTransaction:
    def __init__(self, storage: SqliteStorage):
        self.storage = storage

    def __enter__(self) -> sqlite3.Connection:
        self.storage._lock.acquire()
        db = self.storage._db
        try:
            if db is None:
                raise StorageUnavailable(f"{self.storage.description} is not open")
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self.storage._lock.release()
            raise StorageUnavailable(f"{self.storage.description}: {exc}") from exc
        except BaseException:
            self.storage._lock.release()
            raise
        return db

    def __exit__(self, exc_type, exc, tb) -> bool:
        db = self.storage._db
        try:
            if exc_type is None:
                try:
                    db.execute("COMMIT")
                    return False
                except sqlite3.Error as commit_error:
                    exc_type, exc = type(commit_error), commit_error
            if db.in_transaction:
                db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        finally:
            self.storage._lock.release()
        if isinstance(exc, _VALUE_ERRORS):
            raise UnstorableMessage(f"SQLite refused the values: {exc}") from exc
        if isinstance(exc, sqlite3.Error):
            raise StorageUnavailable(f"{self.storage.description}: {exc}") from exc
        return False
