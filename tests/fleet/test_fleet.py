"""A small fleet end to end: simulated devices (the real store and sync agent), two collector
processes on one shared subscription, one PostgreSQL; one collector is killed with SIGKILL mid-run."""

from __future__ import annotations

import json

from cloud.collector.storage import open_storage
from shared.mqtt.client import BrokerSettings
from tests.support.simulated_fleet import CollectorProcess, DeviceFleet, build_device_stores, device_ids
from tests.sync.fleet import wait_until

DEVICES = 20
ROWS_PER_DEVICE = 150


def test_two_collectors_share_the_fleet_and_a_kill_9_loses_and_doubles_nothing(broker, postgres_url, tmp_path):
    ids = device_ids(DEVICES)
    sent = build_device_stores(tmp_path / "devices", ids, ROWS_PER_DEVICE)
    settings = BrokerSettings(host=broker.host, port=broker.port, reconnect_min_s=1, reconnect_max_s=2)
    collectors = [CollectorProcess(postgres_url, settings, f"collector-{i}", tmp_path / "collectors") for i in range(2)]
    for collector in collectors:
        collector.start()
    for collector in collectors:
        collector.wait_subscribed()
    storage = open_storage(postgres_url)
    storage.open()
    fleet = DeviceFleet(tmp_path / "devices", ids, settings, batch_size=20, poll_interval_s=0.2)
    fleet.start()
    try:
        total = DEVICES * ROWS_PER_DEVICE
        wait_until(lambda: storage.prediction_count() >= total // 4, 60, "a quarter of the rows stored")
        collectors[0].kill9()  # mid-run: batches in flight, some unacknowledged
        assert storage.prediction_count() < total, "the kill came too late to test anything"
        collectors[0].start()  # systemd's Restart=always, same client id: its session is redelivered
        wait_until(lambda: storage.prediction_count() >= total, 120, "every row stored")
        wait_until(lambda: fleet.acked_rows() >= total, 30, "every row acknowledged to its device")
    finally:
        fleet.stop()
        for collector in collectors:
            collector.stop()
    expected = {(device_id, u) for device_id, uuids in sent.items() for u in uuids}
    assert storage.prediction_keys() == expected  # nothing lost, nothing foreign
    assert storage.prediction_count() == len(expected)  # nothing twice
    shares = [json.loads(c.stats_path.read_text())["stored"] for c in collectors]
    assert shares[1] > 0 and sum(shares) <= len(expected), shares  # both worked; the killed one's last run too
    storage.close()
