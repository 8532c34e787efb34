"""Power-cut durability of the prediction store: an answered prediction's commit is fsynced by default
([store] synchronous = "full"); "normal" is a documented choice, not an accident."""

from __future__ import annotations

import pytest

from device.config import ConfigError, load_config
from device.store import PredictionStore

FULL, NORMAL = 2, 1  # PRAGMA synchronous values


def test_the_store_fsyncs_each_commit_unless_configured_otherwise(tmp_path):
    with PredictionStore(tmp_path / "a.db") as store:
        assert store.connection.execute("PRAGMA synchronous").fetchone()[0] == FULL
        assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with PredictionStore(tmp_path / "b.db", synchronous="normal") as store:
        assert store.connection.execute("PRAGMA synchronous").fetchone()[0] == NORMAL


def test_the_config_chooses_it_and_refuses_anything_else(tmp_path):
    assert load_config(env={}).store.synchronous == "full"
    config = tmp_path / "c.toml"
    config.write_text('[store]\nsynchronous = "normal"\n')
    assert load_config(config, env={}).store.synchronous == "normal"
    config.write_text('[store]\nsynchronous = "off"\n')
    with pytest.raises(ConfigError, match=r"\[store\] synchronous"):
        load_config(config, env={})


def record(i: int, **fields) -> dict:
    return {
        "text": f"Data scientist number {i}: pandas, SQL",
        "source": "api",
        "model_name": "m",
        "model_version": "1",
        "label": 1,
        "label_name": "Data Science",
        "probabilities": [0.3, 0.7],
        "latency_ms": 1.0,
        **fields,
    }


def test_inserts_that_arrive_during_a_commit_share_the_next_one(tmp_path):
    """Group commit: eight requests waiting on the write lock cost one fsync, not eight; each returns
    only once its row is committed, and a row that cannot be stored fails alone."""
    import threading
    import time
    import uuid

    from device.store import IdConflict, StoreWriteError

    with PredictionStore(tmp_path / "g.db") as store:
        taken = str(uuid.uuid4())
        store.insert(record(0, uuid=taken))
        commits = []
        store.connection.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        results: dict[int, object] = {}

        def insert(i: int, **fields) -> None:
            try:
                results[i] = store.insert(record(i, **fields))
            except Exception as exc:  # noqa: BLE001 -- the test looks at which ones failed
                results[i] = exc

        with store._lock:  # a commit in progress: everyone arriving now queues behind it
            threads = [threading.Thread(target=insert, args=(i,)) for i in range(1, 7)]
            threads.append(threading.Thread(target=insert, args=(7,), kwargs={"text": "lone \ud800 surrogate"}))
            threads.append(threading.Thread(target=insert, args=(8,), kwargs={"uuid": taken}))  # other text: conflict
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 10
            while len(store._queue) < len(threads) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(store._queue) == len(threads)
        for thread in threads:
            thread.join(10)
        assert commits == ["COMMIT"]
        assert isinstance(results[7], StoreWriteError) and isinstance(results[8], IdConflict)
        stored = [results[i] for i in range(1, 7)]
        assert all(store.get(key) is not None for key in stored) and store.count() == 7
