"""The Space's prediction log: every input and its probabilities, shipped off the request path.

A request only builds a record and puts it on a bounded in-memory queue (`PredictionLog.submit`, never
blocks: a full queue drops the record and counts it). One background thread drains the queue in batches and
hands them to a sink:

* `MqttSink` when a broker is configured: the batch is published to the collector as the device fleet's
  prediction batch (`careeredge.predictions/1` on `careeredge/v1/devices/{space_id}/predictions`, QoS 1,
  shared/mqtt/CONTRACT.md), so the monitoring side needs nothing new to ingest Space traffic. A batch the
  broker has not acknowledged within `ack_timeout_s` is appended to the local JSONL file instead: counted,
  never lost (paho may still deliver it after a reconnect: at least once, and the collector keeps one row
  per uuid);
* `JsonlSink` otherwise: one contract record per line in a local file.

Configuration comes from the environment (the Space's variables and secrets):
CAREEREDGE_SPACE_LOG (JSONL path, default prediction_log.jsonl), CAREEREDGE_SPACE_ID (default hf-space),
CAREEREDGE_SPACE_PRIVACY ("full" or "hash": no text, only its sha256 and a snippet),
CAREEREDGE_SPACE_MQTT_HOST / _PORT / _USERNAME / _PASSWORD / _TLS_CA.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from shared.mqtt.contract import MAX_SNIPPET_CHARS, MAX_TEXT_CHARS, PREDICTION_BATCH, Topics, check_identifier

log = logging.getLogger("careeredge.space")

SOURCE = "space"
SNIPPET_CHARS = 120
PRIVACY_MODES = ("full", "hash")


def prediction_record(text: str, prediction, model_name: str, privacy: str = "full") -> dict:
    """One `careeredge.predictions/1` record for a classified posting."""
    return {
        "uuid": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": SOURCE,
        "model_name": model_name,
        "model_version": prediction.model_version.rsplit("@", 1)[-1],
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "text": text[:MAX_TEXT_CHARS] if privacy == "full" else None,
        "snippet": " ".join(text.split())[:SNIPPET_CHARS][:MAX_SNIPPET_CHARS] or None,
        "label": prediction.label,
        "label_name": prediction.label_name,
        "probabilities": [min(1.0, max(0.0, float(p))) for p in prediction.probabilities],
        "latency_ms": max(0.0, float(prediction.latency_ms)),
    }


class Sink(Protocol):
    def write(self, records: list[dict]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, records: list[dict]) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        pass


class MqttSink:
    """Publishes batches to the collector; what the broker does not acknowledge goes to `fallback`."""

    def __init__(self, settings, space_id: str, fallback: JsonlSink, ack_timeout_s: float = 5.0):
        from shared.mqtt.client import connect_in_background, make_client

        self.topic = Topics.device_predictions(check_identifier(space_id, "space id"))
        self.space_id = space_id
        self.fallback = fallback
        self.ack_timeout_s = ack_timeout_s
        self.fallback_batches = 0
        self.client = make_client(f"careeredge-{space_id}-{uuid.uuid4().hex[:8]}", settings)
        connect_in_background(self.client, settings)

    def write(self, records: list[dict]) -> None:
        payload = PREDICTION_BATCH.encode(
            {
                "schema": PREDICTION_BATCH.schema_id,
                "device_id": self.space_id,
                "batch_id": str(uuid.uuid4()),
                "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "records": records,
            }
        )
        info = self.client.publish(self.topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout=self.ack_timeout_s)
            acknowledged = info.is_published()
        except (RuntimeError, ValueError):  # not connected, or paho's queue is full
            acknowledged = False
        if not acknowledged:
            self.fallback_batches += 1
            log.warning("space.log.mqtt_unacknowledged: %d records written to %s", len(records), self.fallback.path)
            self.fallback.write(records)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class LogCounters:
    submitted: int = 0
    written: int = 0
    dropped_queue_full: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class PredictionLog:
    """A bounded queue drained by one thread: `submit` costs the request a `put_nowait`, nothing more."""

    def __init__(self, sink: Sink, max_queue: int = 10_000, batch_size: int = 100, flush_interval_s: float = 0.2):
        self.sink = sink
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.counters = LogCounters()
        self._queue: queue.Queue[dict | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._drain, name="space-prediction-log", daemon=True)
        self._thread.start()

    def submit(self, record: dict) -> bool:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.counters.dropped_queue_full += 1
            return False
        self.counters.submitted += 1
        return True

    def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch: list[dict] = []
            deadline = time.monotonic() + self.flush_interval_s
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if batch:
                self._write(batch)

    def _write(self, batch: list[dict]) -> None:
        try:
            self.sink.write(batch)
            self.counters.written += len(batch)
        except Exception as exc:  # a logging failure must never reach a user's request
            self.counters.failed += len(batch)
            self.counters.errors = [*self.counters.errors[-9:], str(exc)[:200]]
            log.error("space.log.write_failed: %s", exc)

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then stop the thread and the sink."""
        self._queue.put(None)
        self._thread.join(timeout)
        self.sink.close()


def log_from_environment(env: dict[str, str] | None = None) -> tuple[PredictionLog, str]:
    """The Space's log as configured by its environment, and a one-line description of where it goes."""
    env = dict(os.environ if env is None else env)
    jsonl = JsonlSink(env.get("CAREEREDGE_SPACE_LOG") or "prediction_log.jsonl")
    host = env.get("CAREEREDGE_SPACE_MQTT_HOST", "").strip()
    if not host:
        return PredictionLog(jsonl), f"JSONL file {jsonl.path}"
    from shared.mqtt.client import BrokerSettings

    settings = BrokerSettings(
        host=host,
        port=int(env.get("CAREEREDGE_SPACE_MQTT_PORT") or 1883),
        tls_ca=env.get("CAREEREDGE_SPACE_MQTT_TLS_CA") or None,
        username=env.get("CAREEREDGE_SPACE_MQTT_USERNAME") or None,
        password=env.get("CAREEREDGE_SPACE_MQTT_PASSWORD") or None,
    )
    space_id = env.get("CAREEREDGE_SPACE_ID") or "hf-space"
    sink = MqttSink(settings, space_id, fallback=jsonl)
    return PredictionLog(sink), f"MQTT {settings.address} as {space_id} (unacknowledged batches: {jsonl.path})"


def privacy_from_environment(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    privacy = (env.get("CAREEREDGE_SPACE_PRIVACY") or "full").strip()
    if privacy not in PRIVACY_MODES:
        raise ValueError(f"CAREEREDGE_SPACE_PRIVACY must be one of {PRIVACY_MODES}, got {privacy!r}")
    return privacy
