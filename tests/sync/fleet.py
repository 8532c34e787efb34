"""Test helpers: device agents, collectors and raw MQTT clients against the fixture broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cloud.collector.collector import Collector
from cloud.collector.storage import SqliteStorage
from device.store import PredictionStore
from device.sync.agent import SyncAgent, SyncSettings
from shared.mqtt.client import BrokerSettings, make_client


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def broker_settings(broker) -> BrokerSettings:
    # Short backoff so restarts are noticed within a test's patience.
    return BrokerSettings(host=broker.host, port=broker.port, reconnect_min_s=1, reconnect_max_s=2, keepalive_s=5)


def start_collector(broker, db_path: Path, client_id: str = "collector-test") -> tuple[Collector, SqliteStorage]:
    storage = SqliteStorage(db_path)
    collector = Collector(storage, broker_settings(broker), client_id=client_id)
    collector.start()
    assert collector.subscribed.wait(10), "collector did not subscribe"
    return collector, storage


def make_agent(
    broker,
    tmp_path: Path,
    device_id: str = "pi-1",
    store_path: Path | None = None,
    public_key: Path | None = None,
    batch_size: int = 100,
    buffer_cap_rows: int = 100_000,
    ack_timeout_s: float = 60.0,
    **kwargs,
) -> SyncAgent:
    store_path = store_path or tmp_path / f"{device_id}.db"
    settings = SyncSettings(
        device_id=device_id,
        broker=broker_settings(broker),
        channel="stable",
        models_dir=tmp_path / f"{device_id}-models",
        public_key=public_key,
        batch_size=batch_size,
        buffer_cap_rows=buffer_cap_rows,
        poll_interval_s=0.2,
        ack_timeout_s=ack_timeout_s,
    )
    return SyncAgent(
        settings,
        store_factory=lambda: PredictionStore(store_path),
        close_store=True,
        enable_ota=public_key is not None,
        **kwargs,
    )


class RawClient:
    """A plain MQTT client (an attacker, a test probe): publish anything, record what arrives."""

    def __init__(self, broker):
        self.client = make_client(f"probe-{uuid.uuid4().hex[:8]}", BrokerSettings(host=broker.host, port=broker.port))
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def uuids_in_collector(storage: SqliteStorage) -> list[str]:
    return sorted(storage.prediction_uuids())


def unsynced(store_path: Path) -> int:
    with PredictionStore(store_path) as store:
        return store.count_unsynced()


def publish_raw_update(broker, manifest: dict | bytes, chunks: list[bytes], channel: str = "stable") -> None:
    """Publish chunks then a manifest exactly as given (what an attacker with broker access can do)."""
    from shared.mqtt.contract import Topics, bundle_id, canonical_json

    raw = manifest if isinstance(manifest, bytes) else canonical_json(manifest)
    probe = RawClient(broker)
    try:
        if isinstance(manifest, dict):
            for index, chunk in enumerate(chunks):
                probe.publish(Topics.model_chunk(channel, bundle_id(manifest["sha256"]), index), chunk, retain=True)
        probe.publish(Topics.model_manifest(channel), raw, retain=True)
    finally:
        probe.close()


def read_chunks(path: Path, chunk_size: int) -> list[bytes]:
    with open(path, "rb") as handle:
        return list(iter(lambda: handle.read(chunk_size), b""))


def ota_events(storage: SqliteStorage, event: str | None = None) -> list[dict]:
    return [e for e in storage.ota_events() if event is None or e["event"] == event]
