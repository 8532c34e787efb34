"""Over-the-air updates without a broker: signed releases, and a transport that behaves like a broker's
retained topics (subscribing to a topic delivers its retained payload).

The OTA updater is driven synchronously (`deliver_all`), so a test or a bench can stop it at any step
and start a new updater on the same `models_dir`, which is exactly what a device sees after a kill -9.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from cloud.publisher.packing import build_ota_manifest, pack_bundle
from shared.mqtt.contract import OTA_MANIFEST, Topics, bundle_id

CHANNEL = "stable"
CHUNK_BYTES = 64 * 1024


@dataclass
class Release:
    """A packed, signed bundle: the OTA manifest and the chunks the broker would retain."""

    version: str
    manifest: dict
    chunks: list[bytes]

    @property
    def manifest_bytes(self) -> bytes:
        return OTA_MANIFEST.encode(self.manifest)

    def chunk_topic(self, index: int) -> str:
        return Topics.model_chunk(self.manifest["channel"], bundle_id(self.manifest["sha256"]), index)


def make_release(
    bundle_dir: Path,
    work_dir: Path,
    private_key,
    sequence: int,
    channel: str = CHANNEL,
    chunk_size: int = CHUNK_BYTES,
    key_rotations: list[dict] | None = None,
) -> Release:
    packed = pack_bundle(bundle_dir, work_dir / f"{bundle_dir.name}-{sequence}.tar", private_key, chunk_size)
    manifest = build_ota_manifest(packed, channel, sequence, private_key, key_rotations)
    with open(packed.path, "rb") as handle:
        chunks = list(iter(lambda: handle.read(chunk_size), b""))
    return Release(packed.version, manifest, chunks)


class RetainedTopics:
    """An `OtaTransport` over an in-memory retained store. Subscribing to a topic queues its retained
    payload for delivery; `deliver_all(updater)` hands the queue to the updater one message at a time."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.subscribed: set[str] = set()
        self.published: list[tuple[str, bytes]] = []
        self._queue: deque[tuple[str, bytes]] = deque()

    # --- OtaTransport ---------------------------------------------------------------------------
    def subscribe(self, topics: list[str]) -> None:
        for topic in topics:
            self.subscribed.add(topic)
            if self.retained.get(topic):
                self._queue.append((topic, self.retained[topic]))

    def unsubscribe(self, topics: list[str]) -> None:
        self.subscribed.difference_update(topics)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.published.append((topic, payload))

    # --- what a publisher does ------------------------------------------------------------------
    def offer(self, release: Release, corrupt_chunks: dict[int, bytes] | None = None) -> None:
        """Retain the release's chunks (some replaced by `corrupt_chunks`), then its manifest, and deliver
        the manifest to a subscribed device at once (as a broker does)."""
        for index, chunk in enumerate(release.chunks):
            self.retained[release.chunk_topic(index)] = (corrupt_chunks or {}).get(index, chunk)
        self.retain(Topics.model_manifest(release.manifest["channel"]), release.manifest_bytes)

    def retain(self, topic: str, payload: bytes) -> None:
        self.retained[topic] = payload
        if topic in self.subscribed:
            self._queue.append((topic, payload))

    def deliver_all(self, updater, limit: int = 100_000) -> int:
        delivered = 0
        while self._queue and delivered < limit:
            topic, payload = self._queue.popleft()
            updater.handle_message(topic, payload)
            delivered += 1
        return delivered

    def reconnect(self, updater) -> None:
        """A new session: nothing queued survives, the updater re-subscribes (retained payloads return)."""
        self._queue.clear()
        self.subscribed.clear()
        updater.on_connected()
        self.deliver_all(updater)

    def events(self, kind: str | None = None) -> list[dict]:
        import json

        found = [json.loads(p) for t, p in self.published if t.endswith("/ota")]
        return [e for e in found if kind is None or e["event"] == kind]
