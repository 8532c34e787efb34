"""The device's one MQTT session: connection, availability, QoS 1 publishes and their acknowledgements.

Connection: MQTT v5 persistent session, paho's reconnect with exponential backoff, TLS and
username/password from `[sync]` (shared.mqtt.client), a retained `status` topic with last will
`offline` and `online` on every connect, and availability logged once per transition (Home
Assistant's rule).

Prediction batches go out QoS 1 on the device's predictions topic. Delivery is end to end and
reported by batch id: the collector publishes the ids of the batches it committed on the device's
`acks` topic (shared/mqtt/CONTRACT.md), and `dispatch_deliveries(pipeline)` calls
`pipeline.confirm(batch_id)` for each (`pipeline.dead_lettered(batch_id)` for one the collector kept
as a dead letter). A PUBACK only says the broker took the batch, which is no promise: a broker's
queue for an absent collector overflows silently. A failed PUBACK, or "no matching subscribers"
(0x10: nobody would receive it), calls `pipeline.refuse(batch_id, reason)`. Acknowledgements arrive
on paho's network thread and are only queued there; they are dispatched on the thread that
publishes, so a batch's packet id is always recorded before its PUBACK is read.

The OTA updater shares the session through `subscribe`, `unsubscribe` and `publish`
(device.sync.ota.OtaTransport).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import paho.mqtt.client as mqtt

from shared.mqtt.client import AvailabilityLog, BrokerSettings, connect_in_background, make_client
from shared.mqtt.contract import PREDICTION_ACK, STATUS_OFFLINE, STATUS_ONLINE, ContractError, Topics

log = logging.getLogger("careeredge.sync")

PUBACK_NO_MATCHING_SUBSCRIBERS = 0x10


class DeliveryListener(Protocol):
    def confirm(self, batch_id: str) -> None: ...

    def dead_lettered(self, batch_id: str) -> None: ...

    def refuse(self, batch_id: str, reason: str) -> None: ...


class MqttTransport:
    def __init__(
        self,
        device_id: str,
        broker: BrokerSettings,
        max_inflight_messages: int,
        on_connected: Callable[[], None] = lambda: None,
        on_message: Callable[[str, bytes], None] = lambda topic, payload: None,
        on_acknowledged: Callable[[], None] = lambda: None,
    ):
        self.broker = broker
        self.device_id = device_id
        self.status_topic = Topics.device_status(device_id)
        self.predictions_topic = Topics.device_predictions(device_id)
        self.acks_topic = Topics.device_acks(device_id)
        self.on_connected = on_connected
        self.on_message = on_message
        self.on_acknowledged = on_acknowledged  # network thread: a PUBACK is waiting to be dispatched
        self.client = make_client(f"careeredge-device-{device_id}", broker)
        # paho's own queue must never be the bottleneck; the upload pipeline's in-flight window is.
        self.client.max_inflight_messages_set(max_inflight_messages)
        self._availability = AvailabilityLog(log, broker.address)
        self._connected = threading.Event()
        self._connected_since: float | None = None
        self._closing = False
        self._deliveries: queue.Queue = (
            queue.Queue()
        )  # ("puback", mid, reason) / ("committed"|"dead_lettered", batch_id)
        self._batch_by_mid: dict[int, str] = {}  # only touched by the publishing thread

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        client = self.client
        client.will_set(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        connect_in_background(client, self.broker)

    def announce_offline(self) -> None:
        """Say `offline` on the status topic: a clean disconnect does not fire the last will."""
        self._closing = True
        if self._connected.is_set():
            info = self.client.publish(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass

    def disconnect(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connected_since(self) -> float | None:
        return self._connected_since if self._connected.is_set() else None

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # --- prediction batches ------------------------------------------------------------------------

    def publish_batch(self, batch_id: str, payload: bytes) -> bool:
        """QoS 1 publish. While disconnected paho keeps the message and sends it on reconnect."""
        info = self.client.publish(self.predictions_topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return False
        self._batch_by_mid[info.mid] = batch_id
        return True

    def dispatch_deliveries(self, listener: DeliveryListener) -> None:
        """Report every acknowledgement received since the last call to `listener`, by batch id."""
        while True:
            try:
                kind, key, reason = self._deliveries.get_nowait()
            except queue.Empty:
                return
            if kind == "committed":
                listener.confirm(key)
                continue
            if kind == "dead_lettered":
                listener.dead_lettered(key)
                continue
            batch_id = self._batch_by_mid.pop(key, None)
            if batch_id is None:
                continue  # the status message or an OTA event, not a batch
            if reason == PUBACK_NO_MATCHING_SUBSCRIBERS:
                listener.refuse(batch_id, "broker has no collector subscribed")
            elif reason >= 0x80:
                listener.refuse(batch_id, f"broker refused a batch (reason code 0x{reason:02x})")
            # Success: the broker holds the batch. Delivery is the collector's acknowledgement.

    # --- OtaTransport ------------------------------------------------------------------------------

    def subscribe(self, topics: list[str]) -> None:
        if topics:
            self.client.subscribe([(topic, 1) for topic in topics])

    def unsubscribe(self, topics: list[str]) -> None:
        if topics:
            self.client.unsubscribe(topics)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    # --- paho callbacks (network thread: keep them tiny) -------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._availability.disconnected(reason_code)
            return
        self._availability.connected()
        client.subscribe([(self.acks_topic, 1)])  # the persistent session keeps it; renewing is harmless
        client.publish(self.status_topic, STATUS_ONLINE, qos=1, retain=True)
        self._connected_since = time.monotonic()  # paho re-sends unacknowledged batches now
        self._connected.set()
        self.on_connected()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._closing:
            self._availability.disconnected(reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        self._connected.clear()
        self._availability.disconnected("connection failed")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._deliveries.put(("puback", mid, getattr(reason_code, "value", 0)))
        self.on_acknowledged()

    def _on_message(self, _client, _userdata, message) -> None:
        if message.topic != self.acks_topic:
            self.on_message(message.topic, message.payload)
            return
        try:
            ack = PREDICTION_ACK.decode(message.payload)
            if ack["device_id"] != self.device_id:
                raise ContractError("device_mismatch", f"acknowledgement for {ack['device_id']!r}")
        except ContractError as exc:
            log.warning("ignoring an acknowledgement that breaks the contract: %s", exc)
            return
        for batch_id in ack["committed"]:
            self._deliveries.put(("committed", batch_id, None))
        for batch_id in ack.get("dead_lettered") or ():
            self._deliveries.put(("dead_lettered", batch_id, None))
        self.on_acknowledged()
