"""The prediction store on a real SQLite file: WAL, migrations with backup, privacy, pruning that
never touches unsynced rows, concurrent writers from several processes, and a full disk."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device.store import PredictionStore, StoreWriteError
from device.store.migrate import MIGRATIONS_DIR, backup_path, discover

REPO_ROOT = Path(__file__).resolve().parents[2]


def record(label: int = 1, text: str = "Data scientist with Python and SQL", **extra) -> dict:
    p1 = 0.9 if label else 0.2
    return {
        "text": text,
        "source": "cli",
        "model_name": "model_a",
        "model_version": "model_a@1",
        "label": label,
        "label_name": ["Software Engineering", "Data Science"][label],
        "probabilities": [1 - p1, p1],
        "latency_ms": 12.5,
        **extra,
    }


def test_insert_and_read_back(tmp_path):
    store = PredictionStore(tmp_path / "p.db")
    first = store.insert(record(1))
    store.insert(record(0, text="Backend engineer, Java and Kubernetes"))
    assert store.count() == 2 and store.count(label=1) == 1
    newest = store.recent(limit=1)[0]
    assert newest["label"] == 0 and newest["snippet"].startswith("Backend engineer")
    row = store.get(first)
    assert row["text"] == "Data scientist with Python and SQL" and row["synced_at"] is None
    assert row["p1"] == pytest.approx(0.9)
    assert store.recent(limit=10, label=1)[0]["uuid"] == first
    mode = sqlite3.connect(tmp_path / "p.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_same_uuid_twice_is_one_row(tmp_path):
    store = PredictionStore(tmp_path / "p.db")
    key = str(uuid.uuid4())
    assert store.insert(record(uuid=key)) == key
    assert store.insert(record(uuid=key)) == key
    assert store.count() == 1


def test_hash_privacy_keeps_no_text(tmp_path):
    store = PredictionStore(tmp_path / "p.db", privacy="hash")
    text = "Senior data scientist " + "with a long description " * 20 + "and a private detail qz7"
    row = store.get(store.insert(record(text=text)))
    assert row["text"] is None
    assert len(row["text_sha256"]) == 64 and len(row["snippet"]) <= 120
    raw = (tmp_path / "p.db").read_bytes() + (tmp_path / "p.db-wal").read_bytes()
    assert b"private detail qz7" not in raw


def test_prune_never_deletes_unsynced_rows(tmp_path):
    store = PredictionStore(tmp_path / "p.db")
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat().replace("+00:00", "Z")
    old_synced = store.insert(record(created_at=old))
    old_unsynced = store.insert(record(created_at=old))
    new_synced = store.insert(record())
    assert store.mark_synced([old_synced, new_synced]) == 2
    assert store.count_unsynced() == 1 and store.unsynced()[0]["uuid"] == old_unsynced
    assert store.prune(retention_days=30) == 1
    assert store.get(old_synced) is None
    assert store.get(old_unsynced) is not None and store.get(new_synced) is not None
    assert store.prune(retention_days=0) == 0


def test_migrating_an_old_database_backs_it_up_first(tmp_path):
    db = tmp_path / "p.db"
    only_v1 = tmp_path / "migrations_v1"
    only_v1.mkdir()
    first = discover(MIGRATIONS_DIR)[0].path
    (only_v1 / first.name).write_text(first.read_text())
    PredictionStore(db, migrations_dir=only_v1).close()
    kept = str(uuid.uuid4())
    with sqlite3.connect(db) as conn:  # a row as the v1 software wrote it
        conn.execute(
            "INSERT INTO predictions VALUES (?, '2025-06-01T00:00:00.000Z', 'web', 'model_a', "
            "'model_a@1', 'text', 'abc', 'text', 1, 'Data Science', 0.1, 0.9, 5.0, NULL)",
            [kept],
        )
    conn.close()

    store = PredictionStore(db)
    assert store.schema_version == len(discover(MIGRATIONS_DIR))
    assert store.get(kept) is not None
    backup = backup_path(db, 1)
    assert backup.is_file()
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT uuid FROM predictions").fetchall() == [(kept,)]
    notes = store.get(store.insert(record(input_notes=["truncated"])))["input_notes"]
    assert json.loads(notes) == ["truncated"]


WRITER = textwrap.dedent("""
    import sys
    from device.store import PredictionStore
    store = PredictionStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        store.insert({"text": f"{sys.argv[2]} posting {i}", "source": sys.argv[2], "model_name": "m",
                      "model_version": "m@1", "label": i % 2, "label_name": "x", "p0": 0.5, "p1": 0.5,
                      "latency_ms": 1.0})
""")


def test_concurrent_writers_lose_nothing(tmp_path):
    """web, tui and cli as three processes hammering one file, while this process prunes and reads."""
    db = tmp_path / "p.db"
    PredictionStore(db).close()
    per_writer = 300
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), source, str(per_writer)], cwd=REPO_ROOT)
        for source in ("web", "tui", "cli")
    ]
    reader = PredictionStore(db)
    while any(w.poll() is None for w in writers):
        reader.recent(limit=20)
        reader.mark_synced([row["uuid"] for row in reader.unsynced(limit=50)])
    assert [w.returncode for w in writers] == [0, 0, 0]
    assert reader.count() == 3 * per_writer
    counts = dict(reader.connection.execute("SELECT source, COUNT(*) FROM predictions GROUP BY source").fetchall())
    assert counts == {"web": per_writer, "tui": per_writer, "cli": per_writer}
    assert reader.integrity_check() == "ok"


def test_full_disk_raises_a_clear_store_write_error(tmp_path):
    store = PredictionStore(tmp_path / "p.db")
    store.insert(record())
    # SQLite's own "database or disk is full" (SQLITE_FULL), by capping the file at its current size.
    pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
    store.connection.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreWriteError, match="database or disk is full"):
        for _ in range(200):
            store.insert(record(text="x" * 4000))
    assert store.integrity_check() == "ok"


def test_daemon_retention_thread_prunes_synced_rows_at_start(tmp_path):
    from device.daemon import Daemon
    from tests.daemon.conftest import make_config

    config = make_config(tmp_path, None, retention_days=30)
    store = PredictionStore(config.store.path)
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat().replace("+00:00", "Z")
    synced, unsynced = store.insert(record(created_at=old)), store.insert(record(created_at=old))
    store.mark_synced([synced])
    daemon = Daemon(config, load_model=False)
    daemon.start_retention(interval_s=3600)
    deadline = datetime.now() + timedelta(seconds=10)
    while store.get(synced) is not None and datetime.now() < deadline:
        time.sleep(0.05)
    daemon.close()
    assert store.get(synced) is None and store.get(unsynced) is not None


def test_opening_a_new_store_while_another_process_writes_waits_for_it(tmp_path):
    """`careeredge predict` and the daemon may create the same store at once: switching the new file to
    WAL waits for the other writer (SQLite itself would refuse at once) and then opens as usual."""
    from tests.support.sqlite_writer import another_writer

    path = tmp_path / "predictions.db"
    with another_writer(path, holds_s=0.5):
        began = time.monotonic()
        store = PredictionStore(path)
        assert time.monotonic() - began >= 0.4  # it waited for the writer instead of failing
    store.insert(record())
    assert store.count() == 1
    store.close()
