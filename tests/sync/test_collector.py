"""`careeredge-cloud collect` as a process: bad payloads are counted and dropped, good ones stored."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

from shared.mqtt.contract import MAX_PREDICTION_BATCH_BYTES, Topics
from tests.sync.fleet import RawClient, wait_until
from tests.sync.test_contract import valid_batch


def collector_rows(db) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_malformed_and_oversized_payloads_are_counted_and_dropped_without_a_crash(broker, tmp_path, repo_root):
    db, stats, log = tmp_path / "cloud.db", tmp_path / "stats.json", tmp_path / "collector.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.cli",
            "collect",
            "--db",
            str(db),
            "--broker-port",
            str(broker.port),
            "--client-id",
            "collector-cli-test",
            "--stats-json",
            str(stats),
        ],
        cwd=repo_root,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
    )
    try:
        wait_until(lambda: "connected to MQTT broker" in log.read_text(), 30, "collector to connect")
        time.sleep(0.5)  # its SUBSCRIBE follows the CONNACK
        probe = RawClient(broker)
        topic = Topics.device_predictions("pi-1")
        probe.publish(topic, b'{"schema": "careeredge.predictions/1", "records": [')
        probe.publish(topic, b"\xff" * 100)
        probe.publish(topic, b" " * (MAX_PREDICTION_BATCH_BYTES + 1))
        probe.publish(topic, json.dumps({**valid_batch(), "schema": "careeredge.predictions/0"}).encode())
        probe.publish(topic, json.dumps({**valid_batch(), "records": [{"uuid": "not enough"}]}).encode())
        probe.publish(Topics.device_predictions("pi-2"), json.dumps(valid_batch()).encode())  # says it is pi-1
        probe.publish(Topics.device_ota_events("pi-1"), b"[]")
        probe.publish(topic, json.dumps(valid_batch()).encode())
        probe.publish(topic, json.dumps(valid_batch()).encode())  # a device retry: de-duplicated
        probe.close()
        wait_until(lambda: collector_rows(db) == 2, 20, "the valid batch to be stored")
        assert process.poll() is None, "collector died"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()[-2000:]
    counters = json.loads(stats.read_text())
    assert counters["rejected"] == {
        "malformed_json": 1,
        "not_utf8": 1,
        "oversized": 1,
        "wrong_schema": 1,
        "schema": 2,
        "device_mismatch": 1,
    }
    assert counters["stored"] == 2 and counters["duplicates"] == 2
    with sqlite3.connect(db) as conn:
        assert dict(conn.execute("SELECT reason, count FROM rejections")) == counters["rejected"]
