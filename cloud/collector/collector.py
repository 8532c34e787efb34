"""The collector: shared-subscribes to the fleet's topics, validates, de-duplicates, stores.

Delivery is at least once end to end: the collector acknowledges a QoS 1 message (manual ack) only
after storage committed it, and storage is idempotent per prediction uuid, so redeliveries and
device retries become counted duplicates, never double rows. A payload that breaks the contract is
counted under its reason, acknowledged (so the broker stops redelivering it) and dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.collector.storage import CollectorStorage
from shared.mqtt.client import AvailabilityLog, BrokerSettings, connect_in_background, make_client
from shared.mqtt.contract import OTA_EVENT, PREDICTION_BATCH, ContractError, Topics

log = logging.getLogger("careeredge.collector")


@dataclass
class CollectorStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    ota_events: int = 0
    rejected: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "ota_events": self.ota_events,
            "rejected": dict(self.rejected),
        }


class Collector:
    def __init__(
        self,
        storage: CollectorStorage,
        settings: BrokerSettings,
        group: str = "collectors",
        client_id: str = "careeredge-collector",
    ):
        self.storage = storage
        self.settings = settings
        self.group = group
        self.client_id = client_id
        self.stats = CollectorStats()
        self.storage_failed = threading.Event()
        self.subscribed = threading.Event()
        self._stats_lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._stopping = False
        self._availability = AvailabilityLog(log, settings.address)

    # --- pure message handling (no MQTT): what the tests and the MQTT callback both use ----------

    def handle(self, topic: str, payload: bytes) -> str:
        """Process one message; return "stored", "duplicate", "ota_event" or "rejected:<reason>".

        Storage errors propagate: they are not the sender's fault and must not be acknowledged.
        """
        try:
            device_id = Topics.device_id_of(topic)
            kind = topic.rsplit("/", 1)[-1]
            if kind == "predictions":
                batch = PREDICTION_BATCH.decode(payload)
                self._check_sender(batch, device_id)
                stored, duplicates = self.storage.store_predictions(batch)
                with self._stats_lock:
                    self.stats.received += len(batch["records"])
                    self.stats.stored += stored
                    self.stats.duplicates += duplicates
                return "stored" if duplicates == 0 else "duplicate"
            if kind == "ota":
                event = OTA_EVENT.decode(payload)
                self._check_sender(event, device_id)
                self.storage.store_ota_event(event)
                with self._stats_lock:
                    self.stats.ota_events += 1
                log.info(
                    "OTA %s from %s: %s %s", event["event"], device_id, event.get("version"), event.get("reason") or ""
                )
                return "ota_event"
            raise ContractError("unknown_topic", topic)
        except ContractError as exc:
            with self._stats_lock:
                self.stats.rejected[exc.reason] += 1
            self.storage.count_rejection(exc.reason)
            log.debug("rejected message on %s: %s", topic, exc)
            return f"rejected:{exc.reason}"

    @staticmethod
    def _check_sender(payload: dict, topic_device_id: str) -> None:
        # The broker ACL pins each device to its own topics; the payload must agree with the topic.
        if payload["device_id"] != topic_device_id:
            raise ContractError(
                "device_mismatch", f"payload device_id {payload['device_id']!r} on {topic_device_id!r}'s topic"
            )

    def snapshot(self) -> dict:
        with self._stats_lock:
            return self.stats.as_dict()

    # --- MQTT --------------------------------------------------------------------------------------

    def start(self) -> None:
        client = make_client(self.client_id, self.settings, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = lambda *args: self.subscribed.set()
        client.on_message = self._on_message
        self._client = client
        connect_in_background(client, self.settings)

    def stop(self) -> None:
        self._stopping = True
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
        if not self._stopping:
            self._availability.disconnected(reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        self._availability.disconnected("connection refused")

    def _on_message(self, client, userdata, message) -> None:
        try:
            self.handle(message.topic, message.payload)
        except Exception:  # storage failure: leave it unacknowledged so the broker redelivers it
            log.exception("storage failed; stopping without acknowledging the message")
            self.storage_failed.set()
            return
        client.ack(message.mid, message.qos)
