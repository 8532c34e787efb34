"""The device sync agent: store-and-forward prediction logs up, model updates down, one MQTT session.

Upload guarantee (at least once, exactly once after the collector's uuid de-duplication):
- the SQLite store *is* the buffer: rows are read oldest first in batches and published QoS 1;
- a row is marked synced only when the broker's PUBACK for its batch arrived with a success code,
  and not on "no matching subscribers" (0x10): with no collector session, the broker would drop it;
- a batch never acknowledged (the connection died, the session was lost) is re-sent after
  ACK_TIMEOUT_S; the collector drops the duplicate by uuid.

Connection: MQTT v5 persistent session, paho's reconnect with exponential backoff, TLS and
username/password from `[sync]`, a retained `status` topic with last will `offline` and `online`
on every connect, and availability logged once per transition (Home Assistant's rule).

Buffer cap policy (`[sync] buffer_cap_rows`): when more rows than the cap wait for upload, the
*oldest* unsynced rows are deleted (newest data matters most for drift monitoring), the count is
logged, shown in `state()` and shipped to the cloud in the next batch's `dropped_rows`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from device.sync.buffer_cap import drop_oldest_unsynced
from shared.errors import UserError
from shared.files import atomic_write_json
from shared.mqtt.client import AvailabilityLog, BrokerSettings, connect_in_background, make_client
from shared.mqtt.contract import (
    MAX_RECORDS_PER_BATCH,
    MAX_SNIPPET_CHARS,
    MAX_TEXT_CHARS,
    PREDICTION_BATCH,
    PREDICTION_RECORD,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    ContractError,
    Topics,
    validate_object,
)

log = logging.getLogger("careeredge.sync")

MAX_INFLIGHT_BATCHES = 8
ACK_TIMEOUT_S = 60.0
NO_SUBSCRIBER_BACKOFF_S = 5.0
CAP_CHECK_INTERVAL_S = 5.0
STATE_WRITE_INTERVAL_S = 2.0
STATE_FILE = "sync_state.json"
PUBACK_NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass(frozen=True)
class SyncSettings:
    device_id: str
    broker: BrokerSettings
    channel: str
    models_dir: Path
    public_key: Path | None
    buffer_cap_rows: int = 100_000
    batch_size: int = 200
    poll_interval_s: float = 1.0
    fallback_bundle: Path | None = None  # `[model] bundle`: served when no over-the-air slot is active

    @classmethod
    def from_config(cls, config: Any) -> SyncSettings:
        sync = config.sync
        broker = BrokerSettings(
            host=sync.broker_host,
            port=sync.broker_port,
            tls_ca=str(sync.tls_ca) if sync.tls_ca else None,
            tls_cert=str(sync.tls_cert) if sync.tls_cert else None,
            tls_key=str(sync.tls_key) if sync.tls_key else None,
            username=sync.username,
            password=sync.password,
        )
        return cls(
            device_id=sync.device_id,
            broker=broker,
            channel=sync.channel,
            models_dir=Path(sync.models_dir),
            public_key=sync.public_key,
            buffer_cap_rows=sync.buffer_cap_rows,
            batch_size=min(sync.batch_size, MAX_RECORDS_PER_BATCH),
            fallback_bundle=Path(config.model.bundle),
        )


@dataclass
class _Inflight:
    uuids: list[str]
    sent_at: float
    dropped_rows: int


@dataclass
class UploadCounters:
    published_rows: int = 0
    acked_rows: int = 0
    dropped_rows: int = 0
    invalid_rows: int = 0
    last_ack_at: str | None = None
    buffer_rows: int | None = None
    inflight_rows: int = 0
    extra: dict = field(default_factory=dict)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_to_record(row: dict) -> dict:
    """A store row as the contract's prediction record (text and snippet capped to the contract)."""
    created_at = row["created_at"]
    if isinstance(created_at, (int, float)):
        created_at = datetime.fromtimestamp(created_at, UTC).isoformat(timespec="milliseconds")
    text = row.get("text")
    return {
        "uuid": row["uuid"],
        "created_at": str(created_at),
        "source": row.get("source"),
        "model_name": row.get("model_name"),
        "model_version": None if row.get("model_version") is None else str(row["model_version"]),
        "text_sha256": row.get("text_sha256"),
        "text": text[:MAX_TEXT_CHARS] if isinstance(text, str) else None,
        "snippet": (row.get("snippet") or "")[:MAX_SNIPPET_CHARS] or None,
        "label": int(row["label"]),
        "label_name": row["label_name"],
        "probabilities": [min(1.0, max(0.0, float(row["p0"]))), min(1.0, max(0.0, float(row["p1"])))],
        "latency_ms": None if row.get("latency_ms") is None else max(0.0, float(row["latency_ms"])),
    }


class SyncAgent:
    def __init__(
        self,
        settings: SyncSettings,
        store_factory: Callable[[], Any],
        close_store: bool = False,
        enable_ota: bool = True,
        on_model_activated: Callable[[Path], None] | None = None,
        health_check: Callable | None = None,
    ):
        self.settings = settings
        self._store_factory = store_factory
        self._close_store = close_store  # False when the factory hands out the daemon's shared store
        self.counters = UploadCounters()
        self._client = make_client(f"careeredge-device-{settings.device_id}", settings.broker)
        self._availability = AvailabilityLog(log, settings.broker.address)
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._acks: queue.Queue = queue.Queue()
        self._inflight: dict[int, _Inflight] = {}
        self._inflight_uuids: set[str] = set()
        self._pending: deque[dict] = deque()
        self._invalid_uuids: set[str] = set()
        self._hold_until = 0.0
        self._dropped_unreported = 0
        self._upload_thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._lock = threading.Lock()
        self.status_topic = Topics.device_status(settings.device_id)
        self.predictions_topic = Topics.device_predictions(settings.device_id)
        self.ota = self._make_updater(enable_ota, on_model_activated, health_check)

    def _make_updater(self, enable_ota, on_model_activated, health_check):
        if not enable_ota:
            return None
        if self.settings.public_key is None:
            log.warning("no [sync] public_key configured: over-the-air model updates are disabled")
            return None
        from device.sync.ota import OtaUpdater
        from shared.signing import load_public_key

        kwargs = {"health_check": health_check} if health_check else {}
        return OtaUpdater(
            self.settings.device_id,
            self.settings.channel,
            self.settings.models_dir,
            load_public_key(self.settings.public_key),
            transport=_MqttTransport(self._client),
            on_activated=on_model_activated,
            fallback_bundle=self.settings.fallback_bundle,
            **kwargs,
        )

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SyncAgent:
        self._lock_fd = _acquire_device_lock(Path(self.settings.models_dir))
        client = self._client
        client.will_set(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        # paho's own queue must never be the bottleneck; our window (MAX_INFLIGHT_BATCHES) is.
        client.max_inflight_messages_set(MAX_INFLIGHT_BATCHES + 16)
        if self.ota is not None:
            self.ota.start()
        self._upload_thread = threading.Thread(target=self._upload_loop, name="careeredge-sync-upload", daemon=True)
        self._upload_thread.start()
        connect_in_background(client, self.settings.broker)
        _active_agents.add(self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drain acknowledgements, say `offline` (a clean disconnect does not fire the will), disconnect."""
        self._stop.set()
        self._wake.set()
        if self._upload_thread is not None:
            self._upload_thread.join(timeout)
        if self._connected.is_set():
            info = self._client.publish(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        if self.ota is not None:
            self.ota.stop()
        self._client.disconnect()
        self._client.loop_stop()
        _active_agents.discard(self)
        self._write_state_file()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # --- paho callbacks (network thread: keep them tiny) -----------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._availability.disconnected(reason_code)
            return
        self._availability.connected()
        client.publish(self.status_topic, STATUS_ONLINE, qos=1, retain=True)
        with self._lock:
            now = time.monotonic()
            for entry in self._inflight.values():  # paho re-sends them now; restart their ack clocks
                entry.sent_at = now
        self._connected.set()
        if self.ota is not None:
            self.ota.submit_connected()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            self._availability.disconnected(reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        self._connected.clear()
        self._availability.disconnected("connection failed")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put((mid, getattr(reason_code, "value", 0)))
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        if self.ota is not None:
            self.ota.submit(message.topic, message.payload)

    # --- upload loop (its own thread, its own store connection) -------------------------------------

    def _upload_loop(self) -> None:
        store = self._store_factory()
        last_cap_check = last_state_write = 0.0
        try:
            while not self._stop.is_set():
                self._drain_acks(store)
                now = time.monotonic()
                if now - last_cap_check >= CAP_CHECK_INTERVAL_S:
                    self._enforce_cap(store)
                    last_cap_check = now
                self._expire_unacked(now)
                published = 0
                if self._connected.is_set() and now >= self._hold_until:
                    published = self._publish_some(store)
                if now - last_state_write >= STATE_WRITE_INTERVAL_S:
                    self.counters.buffer_rows = store.count_unsynced()
                    self._write_state_file()
                    last_state_write = now
                if not published:
                    self._wake.wait(self.settings.poll_interval_s)
                    self._wake.clear()
            deadline = time.monotonic() + 2.0  # let the last PUBACKs land so they are not re-sent later
            while self._inflight and self._connected.is_set() and time.monotonic() < deadline:
                self._wake.wait(0.05)
                self._wake.clear()
                self._drain_acks(store)
            self._drain_acks(store)
            self.counters.buffer_rows = store.count_unsynced()
        except Exception:
            log.exception("sync upload loop failed")
        finally:
            if self._close_store:
                store.close()

    def _publish_some(self, store) -> int:
        with self._lock:
            free = MAX_INFLIGHT_BATCHES - len(self._inflight)
        if free <= 0:
            return 0
        if not self._pending:
            self._refill_pending(store)
        published = 0
        while free > 0 and self._pending:
            rows = [self._pending.popleft() for _ in range(min(self.settings.batch_size, len(self._pending)))]
            for uuids, payload, dropped in self._encode(rows):
                info = self._client.publish(self.predictions_topic, payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    self._dropped_unreported += dropped
                    self._pending.clear()  # paho refused to queue it; the rows stay unsynced for later
                    return published
                with self._lock:
                    self._inflight[info.mid] = _Inflight(uuids, time.monotonic(), dropped)
                    self._inflight_uuids.update(uuids)
                    self.counters.inflight_rows = len(self._inflight_uuids)
                self.counters.published_rows += len(uuids)
                published += len(uuids)
                free -= 1
        return published

    def _refill_pending(self, store) -> None:
        """Read the next page of unsynced rows once, rather than once per batch (the store is the
        buffer; this page is only a read-ahead and is dropped on any doubt)."""
        with self._lock:
            skip = self._inflight_uuids | self._invalid_uuids
        page = self.settings.batch_size * MAX_INFLIGHT_BATCHES
        self._pending.extend(r for r in store.unsynced(limit=len(skip) + page) if r["uuid"] not in skip)

    def _encode(self, rows: list[dict]) -> list[tuple[list[str], bytes, int]]:
        """One or more (uuids, payload, dropped) within the contract's size limit."""
        records = []
        for row in rows:
            try:
                records.append(row_to_record(row))
            except (KeyError, TypeError, ValueError) as exc:
                self._mark_invalid(row.get("uuid"), exc)
        try:
            return self._split_to_fit(records) if records else []
        except ContractError:
            pass
        # Some row breaks the contract: find it, so one bad row never blocks the queue. It stays in
        # the store, unsynced, for inspection.
        valid = []
        for record in records:
            try:
                validate_object(record, PREDICTION_RECORD, "record")
                valid.append(record)
            except ContractError as exc:
                self._mark_invalid(record["uuid"], exc)
        return self._split_to_fit(valid) if valid else []

    def _mark_invalid(self, row_uuid, exc: Exception) -> None:
        log.warning("not uploading prediction %s: %s", row_uuid, exc)
        self._invalid_uuids.add(row_uuid)
        self.counters.invalid_rows += 1

    def _split_to_fit(self, records: list[dict]) -> list[tuple[list[str], bytes, int]]:
        dropped, self._dropped_unreported = self._dropped_unreported, 0
        batch = {
            "schema": PREDICTION_BATCH.schema_id,
            "device_id": self.settings.device_id,
            "batch_id": str(uuid.uuid4()),
            "sent_at": _now_iso(),
            "dropped_rows": dropped,
            "records": records,
        }
        try:
            return [([r["uuid"] for r in records], PREDICTION_BATCH.encode(batch), dropped)]
        except ContractError as exc:
            self._dropped_unreported += dropped
            if exc.reason != "oversized" or len(records) == 1:
                raise
        half = len(records) // 2
        return self._split_to_fit(records[:half]) + self._split_to_fit(records[half:])

    def _drain_acks(self, store) -> None:
        while True:
            try:
                mid, reason = self._acks.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                entry = self._inflight.pop(mid, None)
                if entry is not None:
                    self._inflight_uuids.difference_update(entry.uuids)
                    self.counters.inflight_rows = len(self._inflight_uuids)
            if entry is None:
                continue  # the status message, or a batch we already gave up on
            if reason < 0x80 and reason != PUBACK_NO_MATCHING_SUBSCRIBERS:
                store.mark_synced(entry.uuids)
                self.counters.acked_rows += len(entry.uuids)
                self.counters.last_ack_at = _now_iso()
                continue
            self._dropped_unreported += entry.dropped_rows
            self._hold_until = time.monotonic() + NO_SUBSCRIBER_BACKOFF_S
            if reason == PUBACK_NO_MATCHING_SUBSCRIBERS:
                log.warning(
                    "broker has no collector subscribed; keeping %d rows and retrying in %.0fs",
                    len(entry.uuids),
                    NO_SUBSCRIBER_BACKOFF_S,
                )
            else:
                log.warning("broker refused a batch (reason code 0x%02x); keeping its rows", reason)

    def _expire_unacked(self, now: float) -> None:
        if not self._connected.is_set():
            return
        with self._lock:
            expired = [mid for mid, entry in self._inflight.items() if now - entry.sent_at > ACK_TIMEOUT_S]
            for mid in expired:
                entry = self._inflight.pop(mid)
                self._inflight_uuids.difference_update(entry.uuids)
                self._dropped_unreported += entry.dropped_rows
        if expired:
            log.warning(
                "%d batches were not acknowledged within %.0fs; they will be re-sent", len(expired), ACK_TIMEOUT_S
            )

    def _enforce_cap(self, store) -> None:
        waiting = store.count_unsynced()
        self.counters.buffer_rows = waiting
        overflow = waiting - self.settings.buffer_cap_rows
        if overflow <= 0:
            return
        dropped = drop_oldest_unsynced(store, overflow)
        self.counters.dropped_rows += dropped
        self._dropped_unreported += dropped
        self.counters.buffer_rows = waiting - dropped
        log.warning(
            "offline buffer over its cap of %d rows: dropped the %d oldest unsynced predictions",
            self.settings.buffer_cap_rows,
            dropped,
        )

    # --- state for the status page -----------------------------------------------------------------------

    def state(self) -> dict:
        active = self.ota.slots.describe(self.ota.slots.active()) if self.ota else None
        return {
            "running": not self._stop.is_set(),
            "device_id": self.settings.device_id,
            "broker": self.settings.broker.address,
            "broker_connected": self._connected.is_set(),
            "buffer_rows": self.counters.buffer_rows,
            "buffer_cap_rows": self.settings.buffer_cap_rows,
            "inflight_rows": self.counters.inflight_rows,
            "published_rows": self.counters.published_rows,
            "acked_rows": self.counters.acked_rows,
            "dropped_rows": self.counters.dropped_rows,
            "invalid_rows": self.counters.invalid_rows,
            "last_ack_at": self.counters.last_ack_at,
            "active_model_version": active["version"] if active else None,
            "ota": self.ota.status() if self.ota else None,
            "updated_at": _now_iso(),
        }

    def _write_state_file(self) -> None:
        path = Path(self.settings.models_dir) / STATE_FILE
        try:
            atomic_write_json(path, self.state())
        except OSError as exc:
            log.debug("could not write %s: %s", path, exc)


class _MqttTransport:
    """The OTA updater's view of the agent's connection."""

    def __init__(self, client: mqtt.Client):
        self.client = client

    def subscribe(self, topics: list[str]) -> None:
        if topics:
            self.client.subscribe([(topic, 1) for topic in topics])

    def unsubscribe(self, topics: list[str]) -> None:
        if topics:
            self.client.unsubscribe(topics)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)


def _acquire_device_lock(models_dir: Path) -> int:
    """One agent per device: two would share one MQTT client id and keep kicking each other off."""
    models_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(models_dir / ".sync.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"another sync agent already runs for {models_dir} (one MQTT session per device; use "
            "either `careeredge sync` or [sync] enabled = true in the daemon)"
        ) from None
    return fd


_active_agents: set[SyncAgent] = set()


def running_agent() -> SyncAgent | None:
    """The agent running in this process, if any (the daemon's status page reads it)."""
    return next(iter(_active_agents), None)
