"""Switching a SQLite file to WAL when other connections may be writing to it.

Both SQLite stores (the device's predictions, a collector's) run in WAL mode, and several processes
may open the same file at once: two collectors creating one new store, `careeredge predict` while
the daemon starts. Switching a file that is not yet WAL needs an exclusive lock, and when another
connection holds a write lock meanwhile SQLite answers "database is locked" at once rather than
waiting on the busy timeout (waiting could deadlock). So the switch is retried until that timeout.
"""

from __future__ import annotations

import sqlite3
import time

_RETRY_S = 0.02


def enable_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """`PRAGMA journal_mode=WAL`, retried while the file is locked for up to `timeout_s` seconds; then
    the last sqlite3.OperationalError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_RETRY_S)
