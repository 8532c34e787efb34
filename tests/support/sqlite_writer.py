"""Another connection writing to a SQLite file, for tests of what opening it meanwhile does."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def another_writer(path: Path, holds_s: float) -> Iterator[None]:
    """A second connection holds a write lock on `path` (a new file, not yet WAL: a table created, a
    write transaction open) from entry until `holds_s` seconds later, then commits."""
    holding, release = threading.Event(), threading.Event()

    def write() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("CREATE TABLE other_writer (a)")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO other_writer VALUES (1)")
        holding.set()
        release.wait(30)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=write, name="another-writer")
    thread.start()
    assert holding.wait(10), "the other writer never took its lock"
    timer = threading.Timer(holds_s, release.set)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        release.set()
        thread.join(10)
