"""Collector storage: the same behaviour from SQLite and from PostgreSQL (every test runs on both)."""

from __future__ import annotations

import copy
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from cloud.collector import schema
from cloud.collector.schema import SchemaTooNew
from cloud.collector.storage import open_storage
from cloud.collector.storage_api import DeadLetter, StorageUnavailable, UnstorableMessage, redact_url
from tests.support.sqlite_writer import another_writer
from tests.sync.test_contract import valid_batch


def batch(device_id: str = "pi-1", batch_id: str = "batch-0001", records: int = 3, **fields) -> dict:
    payload = valid_batch(records)
    payload.update(device_id=device_id, batch_id=batch_id, **fields)
    return payload


def test_a_batch_is_stored_once_however_often_it_arrives(storage):
    first = storage.store_predictions(batch())
    again = storage.store_predictions(batch())  # a broker redelivery: same batch, same records
    assert (first.stored, first.duplicates) == (3, 0)
    assert (again.stored, again.duplicates) == (0, 3)
    assert storage.prediction_count() == 3
    assert storage.committed_batches() == [("pi-1", "batch-0001")]


def test_the_same_uuid_from_two_devices_is_two_predictions(storage):
    """A uuid is unique per device only: one device must not suppress another's rows."""
    storage.store_predictions(batch("pi-1"))
    result = storage.store_predictions(batch("pi-2"))
    assert result.stored == 3
    uuids = {r["uuid"] for r in valid_batch(3)["records"]}
    assert storage.prediction_keys() == {(d, u) for d in ("pi-1", "pi-2") for u in uuids}


def test_dropped_rows_add_up_per_device_and_a_redelivered_batch_counts_once(storage):
    storage.store_predictions(batch("pi-1", "batch-a", dropped_rows=5))
    storage.store_predictions(batch("pi-1", "batch-a", dropped_rows=5))  # redelivered
    storage.store_predictions(batch("pi-1", "batch-b", dropped_rows=2))
    storage.store_predictions(batch("pi-2", "batch-a", dropped_rows=0))
    assert storage.rows_dropped_on_devices() == {"pi-1": 7}


def test_created_at_offsets_are_honoured(storage):
    """A device in another timezone: its +02:00 timestamp is the same instant in storage."""
    five_seconds_ago = datetime.now(UTC) - timedelta(seconds=5)
    payload = batch(records=1)
    payload["records"][0]["created_at"] = five_seconds_ago.astimezone(timezone(timedelta(hours=2))).isoformat()
    storage.store_predictions(payload)
    (delay,) = storage.delivery_delays_s()
    assert 4.0 < delay < 60.0


def test_ota_events_and_dead_letters_are_kept(storage):
    storage.store_ota_event(
        {
            "device_id": "pi-1",
            "event": "rejected",
            "channel": "stable",
            "sequence": 2**63 - 1,
            "version": "3",
            "reason": "bad_signature",
            "at": "2026-05-01T08:00:00+00:00",
        }
    )
    poison = b'{"text": "\\ud800"}' + bytes(range(256))
    storage.store_dead_letter(DeadLetter("careeredge/v1/devices/pi-1/predictions", poison, "bad_text", "d", "c1"))
    storage.store_dead_letter(DeadLetter("careeredge/v1/devices/pi-1/predictions", b"{", "malformed_json", "", "c2"))
    (event,) = storage.ota_events()
    assert (event["event"], event["sequence"], event["at"]) == ("rejected", 2**63 - 1, "2026-05-01T08:00:00.000000Z")
    letters = storage.dead_letters()
    assert [(d["reason"], d["payload"], d["payload_bytes"]) for d in letters] == [
        ("bad_text", poison, len(poison)),
        ("malformed_json", b"{", 1),
    ]
    assert storage.rejection_counts() == {"bad_text": 1, "malformed_json": 1}


@pytest.mark.parametrize(
    "field, value",
    [("dropped_rows", 2**70), ("text", "lone \ud800 surrogate"), ("latency_ms", 2**1100)],
)
def test_values_no_store_can_hold_are_refused_whole(storage, field, value):
    """Bypassing the contract: the store refuses the batch as a whole, nothing half written."""
    payload = batch(records=3)
    if field == "dropped_rows":
        payload[field] = value
    else:
        payload["records"][2][field] = value
    with pytest.raises(UnstorableMessage):
        storage.store_predictions(payload)
    assert storage.prediction_count() == 0
    assert storage.committed_batches() == []


def test_two_collectors_writing_the_same_batches_store_each_row_once(store_url):
    batches = [batch(f"pi-{i % 5}", f"batch-{i:04d}", records=20) for i in range(40)]
    for i, payload in enumerate(batches):  # distinct uuids per batch
        for j, record in enumerate(payload["records"]):
            record["uuid"] = f"00000000-0000-4000-8000-{i:06d}{j:06d}"
    stores = [open_storage(store_url, collector=f"c{i}") for i in range(2)]
    stored = [0, 0]

    def write(index: int) -> None:
        stores[index].open()
        for payload in batches if index == 0 else reversed(batches):
            stored[index] += stores[index].store_predictions(copy.deepcopy(payload)).stored

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert stores[0].prediction_count() == 800
        assert sum(stored) == 800  # each row counted as stored by exactly one of them
        assert len(stores[1].committed_batches()) == 40
    finally:
        for store in stores:
            store.close()


def test_a_schema_newer_than_this_software_is_refused_with_one_clear_line(storage, store_url):
    latest = schema.latest_version(storage.engine)
    if storage.engine == "sqlite":
        with sqlite3.connect(store_url) as db:
            db.execute(f"PRAGMA user_version = {latest + 1}")
        db.close()
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (latest + 1,))
    newer = open_storage(store_url)
    with pytest.raises(SchemaTooNew) as refused:
        newer.open()
    message = refused.value.format_message()
    assert f"schema version {latest + 1}, newer than this careeredge knows ({latest})" in message
    assert "\n" not in message
    if storage.engine == "postgresql":
        assert urlsplit(store_url).password not in message
    newer.close()


def test_both_engines_have_the_same_numbered_migrations():
    names = {engine: [m.path.name for m in schema.migrations(engine)] for engine in schema.ENGINES}
    assert names["sqlite"] == names["postgresql"] and len(names["sqlite"]) >= 2


def test_a_collector_file_from_before_migrations_is_upgraded_with_a_backup(tmp_path):
    """A SQLite file written by the collector before numbered migrations (uuid-only key)."""
    path = tmp_path / "collector.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((schema.MIGRATIONS_ROOT / "sqlite" / "0001_create_collector_tables.sql").read_text())
        db.execute(
            "INSERT INTO predictions VALUES ('u-0000001', 'pi-1', 'b1', '2026-05-01T08:00:00.000+00:00',"
            " '2026-05-01T07:59:00.000Z', 'web', 'm', '1', NULL, 'old row', 'old row', 1, 'Data Science', 0.2, 0.8, 3.0)"
        )
        db.execute("INSERT INTO rejections VALUES ('schema', 4)")
    db.close()
    storage = open_storage(str(path))
    storage.open()
    try:
        assert storage.schema_version() == schema.latest_version("sqlite")
        assert storage.prediction_keys() == {("pi-1", "u-0000001")}
        assert storage.rejection_counts() == {"schema": 4}
        assert storage.store_predictions(batch("pi-2", records=1)).stored == 1
    finally:
        storage.close()
    with sqlite3.connect(tmp_path / "collector.sqlite.v0.bak") as backup:
        assert backup.execute("SELECT uuid FROM predictions").fetchall() == [("u-0000001",)]
    backup.close()


def test_a_refused_login_is_one_line_that_names_the_reason_but_not_the_password(postgres_server, postgres_url):
    name = postgres_url.rsplit("/", 1)[1]
    wrong = postgres_server.url(name, password="not-the-Secret-42")
    storage = open_storage(wrong)
    storage.connect_timeout_s = 2
    with pytest.raises(StorageUnavailable) as refused:
        storage.open()
    storage.close()
    message = str(refused.value)
    assert "password authentication failed" in message
    assert "not-the-Secret-42" not in message and "\n" not in message


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "postgresql://collector:s3cret@db.example:5432/careeredge",
            "postgresql://collector:***@db.example:5432/careeredge",
        ),
        ("postgresql://collector@db/careeredge", "postgresql://collector@db/careeredge"),
        ("postgresql://u:p%40ss@[::1]/x?sslmode=require", "postgresql://u:***@[::1]/x?sslmode=require"),
        ("host=db user=collector password='a b' dbname=x", "host=db user=collector password=*** dbname=x"),
    ],
)
def test_store_urls_are_logged_without_their_password(url, shown):
    assert redact_url(url) == shown


def test_an_unknown_store_scheme_is_a_clear_error():
    from shared.errors import UserError

    with pytest.raises(UserError, match="unsupported scheme 'mysql'"):
        open_storage("mysql://root:pw@db/x")


def test_several_batches_commit_together_or_not_at_all(storage):
    first, again, other = batch("pi-1", "batch-a"), batch("pi-1", "batch-a"), batch("pi-2", "batch-b", records=2)
    results = storage.store_prediction_batches([first, again, other])  # a redelivery inside the group too
    assert [(r.batch_id, r.stored, r.duplicates) for r in results] == [
        ("batch-a", 3, 0),
        ("batch-a", 0, 3),
        ("batch-b", 2, 0),
    ]
    poisoned = batch("pi-3", "batch-c")
    poisoned["records"][1]["text"] = "lone \ud800"
    with pytest.raises(UnstorableMessage):
        storage.store_prediction_batches([batch("pi-3", "batch-d"), poisoned])
    assert storage.prediction_count() == 5
    assert sorted(storage.committed_batches()) == [("pi-1", "batch-a"), ("pi-2", "batch-b")]


@pytest.mark.parametrize("writer_holds_s, busy_timeout_s", [(0.5, 30.0), (3.0, 0.3)])
def test_opening_a_new_sqlite_store_waits_for_a_writer_up_to_the_busy_timeout(tmp_path, writer_holds_s, busy_timeout_s):
    """Switching a new store to WAL needs an exclusive lock; while another connection writes (a second
    collector creating the same store), SQLite refuses at once rather than wait. Opening waits for the
    writer like any busy lock, and past the busy timeout says so in one line."""
    from cloud.collector.sqlite_storage import SqliteStorage

    path = tmp_path / "collector.sqlite"
    with another_writer(path, writer_holds_s):
        began = time.monotonic()
        if writer_holds_s < busy_timeout_s:
            store = SqliteStorage(path, busy_timeout_s=busy_timeout_s)
            assert time.monotonic() - began >= writer_holds_s * 0.8  # it waited for the writer
            assert store.prediction_count() == 0 and store.schema_version() == schema.latest_version("sqlite")
            store.close()
        else:
            with pytest.raises(StorageUnavailable, match="database is locked"):
                SqliteStorage(path, busy_timeout_s=busy_timeout_s)
            assert time.monotonic() - began < writer_holds_s
