"""The collector: shared-subscribes to the fleet's topics, validates, de-duplicates, stores.

Delivery is at least once end to end: the collector acknowledges a QoS 1 message (manual ack) only
after storage committed it, and storage is idempotent per `(device_id, uuid)`, so redeliveries and
device retries become counted duplicates, never double rows.

What happens to a message, by what went wrong:
- nothing: stored, then acknowledged;
- it breaks the contract (malformed, oversized, wrong types or ranges, bad text or timestamps), or
  the store refuses its values: acknowledged (the broker must stop redelivering it), counted by
  reason and kept in the `dead_letters` table with its payload. One poison message never stops
  the collector;
- the store is unavailable (server down, login refused, lock timeout, disk full): NOT
  acknowledged. The writer retries the same message with exponential backoff, logging once when
  the store goes away and once when it is back; after `give_up_after_s` of outage it stops, still
  without acknowledging, and the broker redelivers the message to the next run (systemd restarts
  the unit).

Messages are stored by one writer thread in arrival order, so acknowledgements leave in the order
the messages came (MQTT's rule), and paho's network thread stays free to answer keepalives while a
write waits for the store. The writer commits whatever has queued up meanwhile (up to MAX_GROUP
messages) in one transaction: idle, each batch is written alone; under load one commit serves many.

End-to-end acknowledgement: after a group is committed, and before its MQTT acks, the writer
publishes to each device's `acks` topic the ids of its batches now in the store (a duplicate is
acknowledged again: it is in the store) and of the batches it kept as dead letters. Devices mark
rows synced only on that message, never on the broker's PUBACK (shared/mqtt/CONTRACT.md).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.collector.storage_api import (
    CollectorStorage,
    DeadLetter,
    StorageUnavailable,
    StoredBatch,
    UnstorableMessage,
)
from shared.mqtt.client import AvailabilityLog, BrokerSettings, connect_in_background, make_client
from shared.mqtt.contract import (
    MAX_ACKED_BATCHES,
    OTA_EVENT,
    PREDICTION_ACK,
    PREDICTION_BATCH,
    ContractError,
    Topics,
    is_batch_id,
)

log = logging.getLogger("careeredge.collector")

MAX_DETAIL_CHARS = 1000
MAX_GROUP = 64  # messages committed in one transaction at most


@dataclass(frozen=True)
class RetryPolicy:
    """How long a store outage is waited out before the collector stops (without acknowledging)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    give_up_after_s: float = 600.0

    def delays(self):
        delay = self.initial_s
        while True:
            yield delay
            delay = min(self.max_s, delay * 2)


@dataclass
class CollectorStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    batches: int = 0
    ota_events: int = 0
    rejected: Counter = field(default_factory=Counter)
    store_outages: int = 0
    acks_sent: int = 0

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "batches": self.batches,
            "ota_events": self.ota_events,
            "rejected": dict(self.rejected),
            "dead_lettered": sum(self.rejected.values()),
            "store_outages": self.store_outages,
            "acks_sent": self.acks_sent,
        }


def decode(topic: str, payload: bytes) -> tuple[str, dict]:
    """(kind, message) for a device topic; ContractError for anything the contract refuses."""
    device_id = Topics.device_id_of(topic)
    kind = topic.rsplit("/", 1)[-1]
    if kind == "predictions":
        message = PREDICTION_BATCH.decode(payload)
    elif kind == "ota":
        message = OTA_EVENT.decode(payload)
    else:
        raise ContractError("unknown_topic", topic)
    # The broker ACL pins each device to its own topics; the payload must agree with the topic.
    if message["device_id"] != device_id:
        raise ContractError("device_mismatch", f"payload device_id {message['device_id']!r} on {device_id!r}'s topic")
    return kind, message


def _printable(text: str) -> str:
    """A detail line any store can hold: no NUL, no lone surrogates, bounded."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_DETAIL_CHARS]


def _batch_sender(topic: str, payload: bytes) -> tuple[str, str] | None:
    """(device_id, batch_id) of a prediction batch the contract refused, when both can still be read."""
    if not topic.endswith("/predictions"):
        return None
    try:
        device_id = Topics.device_id_of(topic)
        batch_id = json.loads(payload).get("batch_id")
    except (ContractError, ValueError, AttributeError, RecursionError):
        return None
    return (device_id, batch_id) if is_batch_id(batch_id) else None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Collector:
    def __init__(
        self,
        storage: CollectorStorage,
        settings: BrokerSettings,
        group: str = "collectors",
        client_id: str = "careeredge-collector",
        retry: RetryPolicy = RetryPolicy(),
        on_committed: Callable[[StoredBatch], None] | None = None,
    ):
        self.storage = storage
        self.settings = settings
        self.group = group
        self.client_id = client_id
        self.retry = retry
        # Called after a prediction batch is committed and before its MQTT ack: the hook an
        # end-to-end acknowledgement to the device hangs on (which batch ids are safely stored).
        self.on_committed = on_committed
        self.stats = CollectorStats()
        self.storage_failed = threading.Event()
        self.subscribed = threading.Event()
        self._stats_lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._inbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._availability = AvailabilityLog(log, settings.address)
        # device_id -> {"committed": [...], "dead_lettered": [...]}: what the next acks will say
        self._pending_acks: dict[str, dict[str, list[str]]] = defaultdict(
            lambda: {"committed": [], "dead_lettered": []}
        )

    # --- messages, no MQTT: what the tests and the writer thread both use -------------------------

    def handle(self, topic: str, payload: bytes) -> str:
        """Process one message; return "stored", "duplicate", "ota_event" or "rejected:<reason>".

        Raises StorageUnavailable when the store cannot take the write: the message must not be
        acknowledged. Everything else ends in storage or in the dead letters.
        """
        outcomes: list[str | None] = [None]
        self.handle_all([(topic, payload)], outcomes)
        return outcomes[0]

    def handle_all(self, messages: list[tuple[str, bytes]], outcomes: list[str | None]) -> None:
        """Process the messages whose outcome is still None, filling it in.

        The valid prediction batches among them are committed together (one transaction, one
        round trip); if the store refuses that group, each is retried alone so only the refused
        one is dead-lettered. StorageUnavailable can interrupt it: call again with the same
        `outcomes` and only what is still undecided is redone (no dead letter is written twice).
        """
        batches: list[tuple[int, dict]] = []
        for i, (topic, payload) in enumerate(messages):
            if outcomes[i] is not None:
                continue
            try:
                kind, message = decode(topic, payload)
            except ContractError as exc:
                outcomes[i] = self._dead_letter(topic, payload, exc.reason, exc.message)
                continue
            if kind == "predictions":
                batches.append((i, message))
            else:
                outcomes[i] = self._guarded(topic, payload, lambda m=message: self._store_ota_event(m))
        if len(batches) > 1:
            try:
                committed = self.storage.store_prediction_batches([batch for _, batch in batches])
            except UnstorableMessage:
                pass  # one of them: find it below
            else:
                self.storage.store_monitoring([batch for _, batch in batches])
                for (i, _), result in zip(batches, committed):
                    outcomes[i] = self._count_committed(result)
                return
        for i, batch in batches:
            topic, payload = messages[i]
            outcomes[i] = self._guarded(topic, payload, lambda b=batch: self._count_committed(self._store_one(b)))

    def _store_one(self, batch: dict) -> StoredBatch:
        stored = self.storage.store_prediction_batches([batch])[0]
        self.storage.store_monitoring([batch])  # after the commit: a redelivery redoes it, idempotently
        return stored

    def _guarded(self, topic: str, payload: bytes, store: Callable[[], str]) -> str:
        try:
            return store()
        except StorageUnavailable:
            raise
        except UnstorableMessage as exc:
            return self._dead_letter(topic, payload, exc.reason, str(exc))
        except Exception as exc:  # an unforeseen error must not become a crash loop on redelivery
            log.warning(
                "storing a message on %s failed unexpectedly; keeping it as a dead letter", topic, exc_info=True
            )
            return self._dead_letter(topic, payload, "store_error", f"{type(exc).__name__}: {exc}")

    def _store_ota_event(self, event: dict) -> str:
        self.storage.store_ota_event(event)
        with self._stats_lock:
            self.stats.ota_events += 1
        log.info(
            "OTA %s from %s: %s %s", event["event"], event["device_id"], event.get("version"), event.get("reason") or ""
        )
        return "ota_event"

    def _count_committed(self, committed: StoredBatch) -> str:
        with self._stats_lock:
            self.stats.received += committed.records
            self.stats.stored += committed.stored
            self.stats.duplicates += committed.duplicates
            self.stats.batches += 1
        self._pending_acks[committed.device_id]["committed"].append(committed.batch_id)
        if self.on_committed is not None:
            self.on_committed(committed)
        return "stored" if committed.duplicates == 0 else "duplicate"

    def _dead_letter(self, topic: str, payload: bytes, reason: str, detail: str) -> str:
        letter = DeadLetter(_printable(topic), bytes(payload), reason, _printable(detail), self.client_id)
        try:
            self.storage.store_dead_letter(letter)
        except UnstorableMessage as exc:  # cannot happen with a sanitised letter; never block the queue on it
            log.error("dead letter from %s (%s, sha256 %s) not kept: %s", topic, reason, letter.payload_sha256, exc)
        with self._stats_lock:
            self.stats.rejected[reason] += 1
        log.debug("dead letter from %s: %s: %s", topic, reason, detail)
        sender = _batch_sender(topic, payload)
        if sender is not None:  # tell the device, so it stops re-sending what will never be stored
            self._pending_acks[sender[0]]["dead_lettered"].append(sender[1])
        return f"rejected:{reason}"

    def take_acks(self) -> list[tuple[str, bytes]]:
        """(topic, payload) of the end-to-end acknowledgements due since the last call, one per device."""
        pending, self._pending_acks = self._pending_acks, defaultdict(lambda: {"committed": [], "dead_lettered": []})
        messages = []
        for device_id, ids in pending.items():
            for start in range(0, max(len(ids["committed"]), len(ids["dead_lettered"])), MAX_ACKED_BATCHES):
                payload = {
                    "schema": PREDICTION_ACK.schema_id,
                    "device_id": device_id,
                    "committed": ids["committed"][start : start + MAX_ACKED_BATCHES],
                    "dead_lettered": ids["dead_lettered"][start : start + MAX_ACKED_BATCHES],
                    "at": _now_iso(),
                }
                messages.append((Topics.device_acks(device_id), PREDICTION_ACK.encode(payload)))
        return messages

    def handle_until_stored(self, messages: list[tuple[str, bytes]]) -> list[str] | None:
        """`handle_all`, waiting out a store outage with backoff. None: gave up (or stopping), do not ack."""
        outcomes: list[str | None] = [None] * len(messages)
        outage_started = None
        delays = self.retry.delays()
        while True:
            try:
                self.handle_all(messages, outcomes)
            except StorageUnavailable as exc:
                now = time.monotonic()
                if outage_started is None:
                    outage_started = now
                    with self._stats_lock:
                        self.stats.store_outages += 1
                    log.warning(
                        "storage unavailable (%s); holding the message unacknowledged and retrying with backoff",
                        exc,
                    )
                if now - outage_started >= self.retry.give_up_after_s:
                    log.error(
                        "storage still unavailable after %.0fs; stopping without acknowledging (the broker "
                        "redelivers the message when a collector of group %r reconnects)",
                        now - outage_started,
                        self.group,
                    )
                    return None
                if self._stop.wait(next(delays)):
                    return None
                continue
            if outage_started is not None:
                log.warning(
                    "storage %s is available again after %.1fs",
                    self.storage.description,
                    time.monotonic() - outage_started,
                )
            return outcomes

    def snapshot(self) -> dict:
        with self._stats_lock:
            return self.stats.as_dict()

    # --- MQTT --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        client = make_client(self.client_id, self.settings, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = lambda *args: self.subscribed.set()
        client.on_message = self._on_message
        self._client = client
        self._writer = threading.Thread(target=self._write_loop, name="careeredge-collector-writer", daemon=True)
        self._writer.start()
        connect_in_background(client, self.settings)

    def stop(self) -> None:
        """Stop writing, then disconnect. Messages not yet stored stay unacknowledged: redelivered later."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=60)
            self._writer = None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._availability.disconnected(reason_code)
            return
        self._availability.connected()
        options = SubscribeOptions(qos=1)
        client.subscribe(
            [
                (Topics.shared(self.group, Topics.ALL_DEVICE_PREDICTIONS), options),
                (Topics.shared(self.group, Topics.ALL_DEVICE_OTA_EVENTS), options),
            ]
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self._stop.is_set():
            self._availability.disconnected(reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        self._availability.disconnected("connection refused")

    def _on_message(self, client, userdata, message) -> None:
        # The broker's in-flight window (max_inflight_messages / Receive Maximum) bounds this queue.
        self._inbox.put(message)

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                group = [self._inbox.get(timeout=0.2)]
            except queue.Empty:
                continue
            # Whatever else is already waiting goes into the same transaction: under load one
            # commit (one fsync) serves many batches; when idle a batch is written on its own.
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            if self.handle_until_stored([(m.topic, m.payload) for m in group]) is None:
                if not self._stop.is_set():
                    self.storage_failed.set()
                return
            client = self._client
            if client is not None:
                acks = self.take_acks()
                for topic, payload in acks:  # before the MQTT acks: a crash in between means a redelivery
                    client.publish(topic, payload, qos=1)
                with self._stats_lock:
                    self.stats.acks_sent += len(acks)
                for message in group:  # in arrival order, as MQTT requires
                    client.ack(message.mid, message.qos)
