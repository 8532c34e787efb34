"""The collector under bad luck and bad input: poison messages, a store that refuses or goes away."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from cloud.collector.collector import Collector, RetryPolicy
from cloud.collector.storage import open_storage
from shared.mqtt.client import BrokerSettings
from shared.mqtt.contract import Topics
from tests.support.mosquitto import free_loopback_port
from tests.support.poison import encoded, good_batch, poison_messages
from tests.support.simulated_fleet import CollectorProcess
from tests.sync.fleet import RawClient, wait_until

TOPIC = Topics.device_predictions("pi-1")


def raw_batch(batch_id: str, **record_fields) -> bytes:
    payload = good_batch("pi-1", **record_fields)
    payload["batch_id"] = batch_id
    return encoded(payload)


def test_poison_messages_are_dead_lettered_and_the_collector_keeps_collecting(broker, store_url, tmp_path):
    collector = CollectorProcess(store_url, BrokerSettings(broker.host, broker.port), "collector-poison", tmp_path)
    collector.start()
    try:
        collector.wait_subscribed()
        probe = RawClient(broker)
        poison = poison_messages()
        for topic, payload, _ in poison:
            probe.publish(topic, payload)
        probe.publish(TOPIC, raw_batch("batch-000000000010"))
        probe.close()
        storage = open_storage(store_url)
        storage.open()
        wait_until(lambda: storage.prediction_count() == 1, 30, "the good batch behind the poison")
        assert collector.process.poll() is None, collector.log_tail()
    finally:
        assert collector.stop() == 0, collector.log_tail()
    counts = json.loads(collector.stats_path.read_text())
    assert counts["rejected"] == {"bad_text": 2, "schema": 3, "bad_timestamp": 1}
    letters = storage.dead_letters()
    assert [(d["topic"], d["payload"], d["reason"]) for d in letters] == poison
    assert storage.rejection_counts() == counts["rejected"]
    assert "Traceback" not in collector.log_path.read_text()
    storage.close()


def refuse_model_x(store_url: str, engine: str) -> None:
    """A rule a DBA might add: the store itself refuses rows of model "model-x" (integrity error)."""
    if engine == "sqlite":
        with sqlite3.connect(store_url) as db:
            db.execute(
                "CREATE TRIGGER refuse_model_x BEFORE INSERT ON predictions WHEN NEW.model_name = 'model-x'"
                " BEGIN SELECT RAISE(ABORT, 'model-x is not accepted here'); END"
            )
        db.close()
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE predictions ADD CONSTRAINT model_x_is_not_accepted_here CHECK (model_name <> 'model-x')"
            )


def test_values_the_store_refuses_are_dead_lettered_not_retried(store_url):
    storage = open_storage(store_url)
    storage.open()
    refuse_model_x(store_url, storage.engine)
    collector = Collector(storage, BrokerSettings(), client_id="c-test")
    outcomes = [
        collector.handle(TOPIC, raw_batch("batch-000000000001", model_name="model-x")),
        collector.handle(TOPIC, raw_batch("batch-000000000002")),
    ]
    assert outcomes == ["rejected:unstorable", "stored"]
    (letter,) = storage.dead_letters()
    assert "accepted here" in letter["detail"].replace("_", " ")
    storage.close()


def test_a_store_outage_holds_the_message_and_loses_nothing(broker, postgres_server, postgres_url, caplog):
    caplog.set_level(logging.INFO, logger="careeredge.collector")
    storage = open_storage(postgres_url)
    storage.open()
    settings = BrokerSettings(host=broker.host, port=broker.port, keepalive_s=5)
    collector = Collector(storage, settings, client_id="c-outage", retry=RetryPolicy(initial_s=0.2, max_s=1.0))
    collector.start()
    probe = RawClient(broker)
    try:
        assert collector.subscribed.wait(10)
        probe.publish(TOPIC, raw_batch("batch-000000000001"))
        wait_until(lambda: storage.prediction_count() == 1, 20, "the first batch")
        postgres_server.stop()
        for i in range(2, 6):
            probe.publish(TOPIC, raw_batch(f"batch-00000000000{i}"))
        wait_until(lambda: collector.snapshot()["store_outages"] == 1, 30, "the collector to meet the outage")
        time.sleep(3)  # several retries while the server is down
        postgres_server.start()
        wait_until(lambda: storage.prediction_count() == 5, 60, "every batch after the outage")
    finally:
        probe.close()
        collector.stop()
        storage.close()
    assert collector.snapshot()["rejected"] == {}
    messages = [r.getMessage() for r in caplog.records if r.name == "careeredge.collector"]
    assert sum("storage unavailable" in m for m in messages) == 1, messages
    assert sum("available again" in m for m in messages) == 1, messages
    assert postgres_server.password not in caplog.text


def test_after_the_retry_window_the_collector_stops_unacknowledged_and_the_next_run_stores(
    broker, postgres_server, postgres_url
):
    storage = open_storage(postgres_url)
    storage.open()
    settings = BrokerSettings(host=broker.host, port=broker.port, keepalive_s=5)
    retry = RetryPolicy(initial_s=0.2, max_s=0.5, give_up_after_s=2.0)
    probe = RawClient(broker)
    collector = Collector(storage, settings, client_id="c-give-up", retry=retry)
    collector.start()
    try:
        assert collector.subscribed.wait(10)
        postgres_server.stop()
        probe.publish(TOPIC, raw_batch("batch-000000000001"))
        assert collector.storage_failed.wait(30), "the collector should give up after its retry window"
    finally:
        collector.stop()
        postgres_server.start()
    # The same client id (systemd restarts the same unit): the broker redelivers the unacknowledged message.
    collector = Collector(storage, settings, client_id="c-give-up", retry=retry)
    collector.start()
    try:
        wait_until(lambda: storage.prediction_count() == 1, 60, "the redelivered batch")
    finally:
        probe.close()
        collector.stop()
        storage.close()


def run_collect(*args: str, env_store: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"CAREEREDGE_COLLECTOR_STORE": env_store} if env_store else {})}
    return subprocess.run(
        [sys.executable, "-m", "cloud.cli", "collect", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_collect_against_an_unreachable_store_says_so_in_one_line_and_exits_1():
    url = f"postgresql://collector:Pa55-secret@127.0.0.1:{free_loopback_port()}/careeredge"
    result = run_collect("--store-retry-for", "3", "--broker-port", str(free_loopback_port()), env_store=url)
    assert result.returncode == 1
    assert result.stderr.count("storage unavailable") == 1, result.stderr
    assert "Connection refused" in result.stderr or "connection refused" in result.stderr.lower()
    assert "Pa55-secret" not in result.stderr and "Traceback" not in result.stderr


def test_collect_refuses_a_newer_schema_with_one_line_and_exit_2(tmp_path):
    path = tmp_path / "collector.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    result = run_collect("--store", f"sqlite:///{path}", "--broker-port", "1")
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "schema version 99, newer than this careeredge knows" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", ["mysql://db/x", "sqlite://"])
def test_collect_with_a_bad_store_url_exits_2(bad):
    result = run_collect("--store", bad)
    assert result.returncode == 2 and "Error:" in result.stderr and "Traceback" not in result.stderr


def test_a_group_with_one_refused_batch_stores_the_others(store_url):
    """Under load queued batches are committed together; one the store refuses is set aside alone."""
    storage = open_storage(store_url)
    storage.open()
    refuse_model_x(store_url, storage.engine)
    collector = Collector(storage, BrokerSettings(), client_id="c-group")
    messages = [(TOPIC, raw_batch(f"batch-00000000000{i}", model_name="model-x" if i == 2 else "m")) for i in range(4)]
    outcomes: list = [None] * len(messages)
    collector.handle_all(messages, outcomes)
    assert outcomes == ["stored", "stored", "rejected:unstorable", "stored"]
    assert storage.prediction_count() == 3
    assert [d["payload"] for d in storage.dead_letters()] == [messages[2][1]]
    storage.close()


def test_each_commit_reports_which_batch_ids_are_stored(tmp_path):
    """What an end-to-end acknowledgement to the device needs: the batch ids committed, as they commit."""
    storage = open_storage(str(tmp_path / "collector.sqlite"))
    storage.open()
    committed = []
    collector = Collector(storage, BrokerSettings(), client_id="c-ack", on_committed=committed.append)
    messages = [(TOPIC, raw_batch(f"batch-00000000000{i}")) for i in range(3)]
    collector.handle_all([*messages, messages[0]], [None] * 4)  # the last one is a redelivery
    assert [(c.device_id, c.batch_id, c.stored) for c in committed] == [
        ("pi-1", "batch-000000000000", 1),
        ("pi-1", "batch-000000000001", 1),
        ("pi-1", "batch-000000000002", 1),
        ("pi-1", "batch-000000000000", 0),
    ]
    assert storage.committed_batches() == [("pi-1", f"batch-00000000000{i}") for i in range(3)]
    storage.close()
