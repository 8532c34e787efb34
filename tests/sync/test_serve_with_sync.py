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

        # The collector acknowledges after its commit; once nothing is in flight the status shows it at once
        # (the counters alone are refreshed only once a minute).
        wait_until(lambda: sync_status(daemon.url)["acked_rows"] == 1, 10, "the acknowledgement in the status")
        sync = sync_status(daemon.url)
        assert sync["enabled"] and sync["running"] and sync["broker_connected"] and sync["device_id"] == "pi-serve"
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


def sync_status(url: str) -> dict:
    return requests.get(url + "api/v1/status", timeout=10).json()["sync"]


def sync_buffer(url: str) -> int | None:
    return sync_status(url)["buffer_rows"]
