"""`careeredge serve` with `[sync] enabled = true`: the daemon runs the sync agent in its own process,
on its own store, and a prediction answered over HTTP reaches the collector."""

from __future__ import annotations

import signal

import requests

from shared.mqtt.contract import STATUS_OFFLINE, Topics
from tests.daemon.conftest import post_json, start_daemon
from tests.sync.fleet import RawClient, start_collector, uuids_in_collector, wait_until


def test_a_prediction_served_over_http_reaches_the_collector(broker, tmp_path, tiny_bundle):
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    config = (
        f'[sync]\nenabled = true\ndevice_id = "pi-serve"\nbroker_port = {broker.port}\n'
        f'models_dir = "{tmp_path / "models"}"\n'
    )
    daemon = start_daemon(tmp_path, tiny_bundle, config_text=config)
    probe = RawClient(broker)
    try:
        answer = post_json(daemon.url + "api/v1/predict", {"text": "Data scientist: pandas, statistics"}).json()
        assert answer["stored"] is True
        wait_until(lambda: answer["id"] in uuids_in_collector(storage), 30, "the prediction at the collector")

        sync = requests.get(daemon.url + "api/v1/status", timeout=10).json()["sync"]
        assert sync["enabled"] and sync["running"] and sync["broker_connected"]
        assert sync["device_id"] == "pi-serve" and sync["acked_rows"] == 1
        wait_until(lambda: sync_buffer(daemon.url) == 0, 10, "the buffer to show the row as synced")
        health = requests.get(daemon.url + "healthz", timeout=10).json()
        assert health["status"] == "ok" and health["sync"]["upload_alive"] and health["sync"]["last_error"] is None

        probe.subscribe(Topics.device_status("pi-serve"))
        assert daemon.stop(signal.SIGTERM) == 0
        wait_until(
            lambda: probe.received(Topics.device_status("pi-serve"))[-1:] == [STATUS_OFFLINE],
            10,
            "`offline` from the daemon's agent on a clean stop",
        )
    finally:
        daemon.stop(signal.SIGKILL)
        probe.close()
        collector.stop()


def sync_buffer(url: str) -> int | None:
    return requests.get(url + "api/v1/status", timeout=10).json()["sync"]["buffer_rows"]
