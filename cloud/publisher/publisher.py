"""Put a packed, signed bundle on the broker: retained chunks first, the retained manifest last.

Order matters: a device acts on the manifest, so every chunk it names must already be retained
when the manifest appears. Chunks are content-addressed (topic carries the bundle's sha256 prefix),
so devices resuming an older transfer never mix bytes of two bundles. Once the new manifest is out,
the chunks of the manifest it replaced are deleted (empty retained payloads) to free broker memory.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tqdm import tqdm

from cloud.publisher.packing import PackedBundle, build_ota_manifest
from shared.errors import UserError
from shared.mqtt.client import BrokerSettings, connect_properties, make_client
from shared.mqtt.contract import OTA_MANIFEST, ContractError, Topics, bundle_id
from shared.signing import Keyring, SignatureError, public_key_from_raw, verify_manifest

log = logging.getLogger("careeredge.publisher")

PUBLISH_TIMEOUT_S = 30.0
IN_FLIGHT_CHUNKS = 8  # bounds the publisher's memory to a few chunks, whatever the bundle size


class ChannelPublisher:
    def __init__(self, settings: BrokerSettings, channel: str):
        self.settings = settings
        self.channel = channel
        self._client = make_client(f"careeredge-publisher-{uuid.uuid4().hex[:12]}", settings)
        self._retained_manifest: bytes | None = None
        self._subscribed = threading.Event()

    def __enter__(self) -> ChannelPublisher:
        properties = connect_properties(self.settings, session_expiry_s=0)
        try:
            self._client.connect(
                self.settings.host, self.settings.port, keepalive=30, clean_start=True, properties=properties
            )
        except OSError as exc:
            raise UserError(f"cannot reach MQTT broker {self.settings.address}: {exc}") from None
        self._client.loop_start()
        return self

    def __exit__(self, *exc) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def current_manifest(self, public_key, wait_s: float = 1.0) -> dict | None:
        """The channel's retained manifest if it verifies against our key (forgeries are ignored)."""
        topic = Topics.model_manifest(self.channel)
        received = threading.Event()

        def on_message(client, userdata, message):
            self._retained_manifest = message.payload
            received.set()

        self._client.message_callback_add(topic, on_message)
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.subscribe(topic, qos=1)
        # A retained message follows the SUBACK immediately; no message within wait_s means none.
        if self._subscribed.wait(PUBLISH_TIMEOUT_S):
            received.wait(wait_s)
        self._client.unsubscribe(topic)
        self._client.message_callback_remove(topic)
        if not self._retained_manifest:
            return None
        try:
            manifest = OTA_MANIFEST.decode(self._retained_manifest)
            verify_manifest(manifest, public_key)
            return manifest
        except (ContractError, SignatureError) as exc:
            log.warning("ignoring the channel's current retained manifest: %s", exc)
            return None

    def publish(
        self,
        packed: PackedBundle,
        private_key: Ed25519PrivateKey,
        sequence: int | None = None,
        progress: bool = True,
        key_rotations: list[dict] | None = None,
    ) -> dict:
        # The channel's current manifest may be signed by a key the rotations replaced.
        signers = Keyring([private_key.public_key(), *(public_key_from_raw(r["old_key"]) for r in key_rotations or [])])
        previous = self.current_manifest(signers)
        if sequence is None:
            sequence = (previous["sequence"] + 1) if previous else 1
        elif previous and sequence <= previous["sequence"]:
            raise UserError(
                f"sequence {sequence} is not newer than the channel's current {previous['sequence']}; devices "
                "would reject it as a replay"
            )
        manifest = build_ota_manifest(packed, self.channel, sequence, private_key, key_rotations)
        self._publish_chunks(packed, progress)
        self._wait(
            self._client.publish(Topics.model_manifest(self.channel), OTA_MANIFEST.encode(manifest), qos=1, retain=True)
        )
        if previous and previous["sha256"] != manifest["sha256"]:
            self._delete_chunks(previous)
        return manifest

    def _publish_chunks(self, packed: PackedBundle, progress: bool) -> None:
        in_flight: deque = deque()
        bar = tqdm(total=packed.size, unit="B", unit_scale=True, desc="publishing", disable=not progress)
        with open(packed.path, "rb") as handle, bar:
            for index in range(len(packed.chunk_sha256)):
                chunk = handle.read(packed.chunk_size)
                topic = Topics.model_chunk(self.channel, bundle_id(packed.sha256), index)
                in_flight.append(self._client.publish(topic, chunk, qos=1, retain=True))
                while len(in_flight) > IN_FLIGHT_CHUNKS:
                    self._wait(in_flight.popleft())
                bar.update(len(chunk))
            while in_flight:
                self._wait(in_flight.popleft())

    def _delete_chunks(self, manifest: dict) -> None:
        infos = [
            self._client.publish(
                Topics.model_chunk(self.channel, bundle_id(manifest["sha256"]), i), b"", qos=1, retain=True
            )
            for i in range(len(manifest["chunks"]))
        ]
        for info in infos:
            self._wait(info)

    def _wait(self, info) -> None:
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"publishing to {self.settings.address} failed: {exc}") from None
        if not info.is_published():
            raise UserError(f"broker {self.settings.address} did not acknowledge within {PUBLISH_TIMEOUT_S:.0f}s")
