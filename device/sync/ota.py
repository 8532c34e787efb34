"""Over-the-air model updates: signed manifest -> resumable chunks -> verify -> slot -> activate -> health check.

The device acts on the channel's retained manifest only if
  1. it parses and passes the contract (size-limited),
  2. its ed25519 signature verifies with the public key pinned in the device config,
  3. its `sequence` is newer than the last one this device accepted (no replays, no downgrades).
Then it fetches the chunks (each checked against the signed per-chunk sha256, written to disk,
resumable after a kill), verifies the whole file's size and sha256, unpacks it into a new slot,
verifies the bundle's own signed manifest and file hashes, and only then swaps the `active` link.
The new bundle must pass its golden-example health check, or the links are put back as they were.
Every rejection and rollback is reported on `careeredge/v1/devices/<id>/ota`; the old model stays live.

Threading: paho's network thread only enqueues messages (`submit`); one worker thread runs all of
the logic below, so no state here is shared between threads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import shutil
import tarfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.sync.download import ChunkedDownload, TransferRejected
from device.sync.healthcheck import HealthReport, golden_health_check
from device.sync.slots import ModelSlots, slot_name
from shared.bundle import BundleError, verify_bundle
from shared.files import atomic_write_json
from shared.mqtt.contract import MODEL_STATE, OTA_EVENT, OTA_MANIFEST, ContractError, Topics, bundle_id
from shared.signing import SignatureError, verify_manifest

log = logging.getLogger("careeredge.sync.ota")

CHUNK_WINDOW = 8  # chunk topics subscribed at once: bounds memory and broker fan-out per device
STATE_FILE = "ota_state.json"
DOWNLOADS = "downloads"
SLOT_RECORD = "ota.json"  # written into each slot: which signed transfer produced it
MAX_REMEMBERED_REJECTIONS = 50


class OtaTransport(Protocol):
    """What the updater needs from the MQTT connection (the sync agent provides it)."""

    def subscribe(self, topics: list[str]) -> None: ...

    def unsubscribe(self, topics: list[str]) -> None: ...

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class OtaUpdater:
    def __init__(
        self,
        device_id: str,
        channel: str,
        models_dir: Path,
        public_key: Ed25519PublicKey,
        transport: OtaTransport,
        health_check: Callable[[Path], HealthReport] = golden_health_check,
        on_activated: Callable[[Path], None] | None = None,
        fallback_bundle: Path | None = None,
        window: int = CHUNK_WINDOW,
    ):
        self.device_id = device_id
        self.channel = channel
        self.models_dir = Path(models_dir)
        self.public_key = public_key
        self.transport = transport
        self.health_check = health_check
        # Called with the bundle to serve after every switch (the daemon reloads its model).
        self.on_activated = on_activated
        self.fallback_bundle = fallback_bundle
        self.window = window
        self.slots = ModelSlots(self.models_dir).ensure()
        self.state_path = self.models_dir / STATE_FILE
        self.state = self._load_state()
        self.manifest_topic = Topics.model_manifest(channel)
        self._download: ChunkedDownload | None = None
        self._requested: set[int] = set()
        self.chunks_written = 0  # since this process started (tests and the bench read it)
        self._inbox: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None

    # --- threading ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="careeredge-ota", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._inbox.put(None)
            self._worker.join(timeout=30)
            self._worker = None
        if self._download is not None:
            self._download.close()

    def submit(self, topic: str, payload: bytes) -> None:
        """Called from the network thread: hand the message to the worker."""
        self._inbox.put((topic, payload))

    def submit_connected(self) -> None:
        self._inbox.put(("__connected__", b""))

    def _work(self) -> None:
        while (item := self._inbox.get()) is not None:
            topic, payload = item
            try:
                if topic == "__connected__":
                    self.on_connected()
                else:
                    self.handle_message(topic, payload)
            except Exception:  # the updater must never take the sync agent down with it
                log.exception("OTA worker failed on %s", topic)

    # --- message handling (synchronous; tests call these directly) -----------------------------------

    def on_connected(self) -> None:
        """(Re)subscribe: the retained manifest comes back, and an unfinished transfer resumes."""
        self.transport.subscribe([self.manifest_topic])
        self.publish_model_state()
        if self._download is not None:
            self._requested.clear()
            self._request_missing()

    def handle_message(self, topic: str, payload: bytes) -> None:
        if topic == self.manifest_topic:
            self.handle_manifest(payload)
        elif "/chunks/" in topic:
            self.handle_chunk(topic, payload)

    def handle_manifest(self, payload: bytes) -> None:
        if not payload:
            return  # the channel's manifest was cleared
        payload_digest = hashlib.sha256(payload).hexdigest()
        if payload_digest in self.state["rejected"]:
            return  # already rejected and reported; retained messages come back on every reconnect
        try:
            manifest = OTA_MANIFEST.decode(payload)
            if manifest["channel"] != self.channel:
                raise ContractError("wrong_channel", f"manifest is for channel {manifest['channel']!r}")
            verify_manifest(manifest, self.public_key)
        except (ContractError, SignatureError) as exc:
            self._reject(None, exc.reason, str(exc), remember=payload_digest)
            return
        if manifest["sha256"] in self.state["rejected"]:
            return
        accepted = self.state["accepted_sequence"]
        if manifest["sequence"] < accepted:
            self._reject(
                manifest,
                "downgrade",
                f"sequence {manifest['sequence']} is older than accepted {accepted}",
                remember=payload_digest,
            )
            return
        if manifest["sequence"] == accepted:
            if manifest["sha256"] != self.state["accepted_sha256"]:
                self._reject(
                    manifest,
                    "replay",
                    f"sequence {accepted} was already used by another bundle",
                    remember=payload_digest,
                )
            return  # already installed: nothing to do
        self._start_download(manifest)

    def handle_chunk(self, topic: str, payload: bytes) -> None:
        download = self._download
        if download is None or not payload:
            return  # a stale or deleted retained chunk
        if not topic.startswith(Topics.model_chunk_prefix(self.channel, bundle_id(download.manifest["sha256"]))):
            return  # a chunk of a bundle we are no longer fetching
        index = Topics.chunk_index_of(topic)
        self._requested.discard(index)
        self.transport.unsubscribe([topic])
        try:
            if download.write_chunk(index, payload):
                self.chunks_written += 1
        except TransferRejected as exc:
            self._fail_download(exc)
            return
        if download.complete:
            self._finish(download)
        else:
            self._request_missing()

    # --- transfer ----------------------------------------------------------------------------------

    def _start_download(self, manifest: dict) -> None:
        if self._download is not None:
            if self._download.manifest["sha256"] == manifest["sha256"]:
                self._request_missing()
                return
            log.info(
                "abandoning transfer of %s for newer sequence %s",
                self._download.manifest["version"],
                manifest["sequence"],
            )
            self._unsubscribe_requested()
            self._download.discard()
        self._discard_stale_partials(keep=manifest["sha256"])
        self._download = download = ChunkedDownload(self.models_dir / DOWNLOADS, manifest)
        self._requested.clear()
        resumed = download.resumed_with > 0
        log.info(
            "%s transfer of %s %s (sequence %d): %d/%d chunks on disk",
            "resuming" if resumed else "starting",
            manifest["name"],
            manifest["version"],
            manifest["sequence"],
            download.resumed_with,
            download.total_chunks,
        )
        self._report(
            "download_resumed" if resumed else "download_started",
            manifest,
            detail=f"{download.resumed_with}/{download.total_chunks} chunks on disk",
        )
        if download.complete:
            self._finish(download)
        else:
            self._request_missing()

    def _request_missing(self) -> None:
        download = self._download
        free = self.window - len(self._requested)
        if download is None or free <= 0:
            return
        wanted = [i for i in download.missing() if i not in self._requested][:free]
        if not wanted:
            return
        prefix = Topics.model_chunk_prefix(self.channel, bundle_id(download.manifest["sha256"]))
        self._requested.update(wanted)
        self.transport.subscribe([f"{prefix}/{i}" for i in wanted])

    def _unsubscribe_requested(self) -> None:
        if self._download is not None and self._requested:
            prefix = Topics.model_chunk_prefix(self.channel, bundle_id(self._download.manifest["sha256"]))
            self.transport.unsubscribe([f"{prefix}/{i}" for i in sorted(self._requested)])
        self._requested.clear()

    def _discard_stale_partials(self, keep: str) -> None:
        downloads = self.models_dir / DOWNLOADS
        if downloads.is_dir():
            for path in downloads.iterdir():
                if not path.name.startswith(keep):
                    path.unlink(missing_ok=True)

    def _fail_download(self, exc: TransferRejected) -> None:
        download, self._download = self._download, None
        self._unsubscribe_requested()
        if download is not None:
            download.discard()
            self._reject(download.manifest, exc.reason, exc.detail, remember=download.manifest["sha256"])

    def _finish(self, download: ChunkedDownload) -> None:
        manifest = download.manifest
        staging = self.slots.slots_dir / f".staging-{manifest['sha256'][:16]}"
        try:
            archive = download.verify()
            shutil.rmtree(staging, ignore_errors=True)
            unpack_bundle(archive, staging)
            self._verify_unpacked(staging, manifest)
            (staging / SLOT_RECORD).write_text(
                json.dumps(
                    {k: manifest[k] for k in ("channel", "sequence", "sha256", "version", "name")}
                    | {"installed_at": _now()}
                )
            )
        except TransferRejected as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self._fail_download(exc)
            return
        slot = self.slots.install(staging, slot_name(manifest["version"], manifest["sha256"]))
        download.discard()
        self._download = None
        self._activate(slot, manifest)

    def _verify_unpacked(self, staging: Path, manifest: dict) -> None:
        try:
            bundle_manifest = verify_bundle(staging)
        except BundleError as exc:
            raise TransferRejected("bundle_invalid", str(exc)) from None
        try:
            verify_manifest(bundle_manifest, self.public_key)
        except SignatureError as exc:
            raise TransferRejected(
                f"bundle_{exc.reason}", "the bundle's manifest.json is not signed by the pinned key"
            ) from None
        if str(bundle_manifest["version"]) != manifest["version"]:
            raise TransferRejected(
                "version_mismatch", f"bundle says version {bundle_manifest['version']}, manifest {manifest['version']}"
            )

    # --- activation ----------------------------------------------------------------------------------

    def _activate(self, slot: Path, manifest: dict) -> None:
        before_active, before_previous = self.slots.active(), self.slots.previous()
        self.slots.activate(slot)
        if self.on_activated:
            self.on_activated(self.slots.active_link)
        report = self.health_check(slot)
        if not report.ok:
            self.slots.restore(before_active, before_previous)
            serve_again = self.slots.active_link if before_active is not None else self.fallback_bundle
            if self.on_activated and serve_again is not None:
                self.on_activated(serve_again)
            log.warning("health check of %s failed (%s); rolled back", manifest["version"], report.detail)
            self._remember_rejection(manifest["sha256"], "health_check_failed")
            self._report("rolled_back", manifest, reason="health_check_failed", detail=report.detail)
            self.publish_model_state()
            return
        self.state.update(accepted_sequence=manifest["sequence"], accepted_sha256=manifest["sha256"])
        self._save_state()
        self.slots.prune()
        log.info(
            "activated %s %s (sequence %d): %s",
            manifest["name"],
            manifest["version"],
            manifest["sequence"],
            report.detail,
        )
        self._report("activated", manifest, detail=report.detail)
        self.publish_model_state()

    # --- reporting and state ---------------------------------------------------------------------------

    def _reject(self, manifest: dict | None, reason: str, detail: str, remember: str) -> None:
        log.warning(
            "rejected OTA update%s: %s (%s); keeping the current model",
            f" {manifest['version']}" if manifest else "",
            reason,
            detail,
        )
        self._remember_rejection(remember, reason)
        self._report("rejected", manifest, reason=reason, detail=detail)

    def _remember_rejection(self, key: str, reason: str) -> None:
        rejected = self.state["rejected"]
        rejected[key] = reason
        while len(rejected) > MAX_REMEMBERED_REJECTIONS:
            rejected.pop(next(iter(rejected)))
        self._save_state()

    def _report(self, event: str, manifest: dict | None, reason: str | None = None, detail: str | None = None) -> None:
        payload = {
            "schema": OTA_EVENT.schema_id,
            "device_id": self.device_id,
            "event": event,
            "channel": self.channel,
            "sequence": manifest["sequence"] if manifest else None,
            "version": manifest["version"] if manifest else None,
            "sha256": manifest["sha256"] if manifest else None,
            "reason": reason,
            "detail": (detail or "")[:1024] or None,
            "at": _now(),
        }
        self.state["last_event"] = payload
        self._save_state()
        self.transport.publish(Topics.device_ota_events(self.device_id), OTA_EVENT.encode(payload))

    def publish_model_state(self) -> None:
        active, previous = self.slots.describe(self.slots.active()), self.slots.describe(self.slots.previous())
        record = self._slot_record(self.slots.active())
        payload = {
            "schema": MODEL_STATE.schema_id,
            "device_id": self.device_id,
            "active_version": active["version"] if active else None,
            "active_sha256": record.get("sha256"),
            "previous_version": previous["version"] if previous else None,
            "sequence": record.get("sequence"),
            "at": _now(),
        }
        self.transport.publish(Topics.device_model(self.device_id), MODEL_STATE.encode(payload), retain=True)

    @staticmethod
    def _slot_record(slot: Path | None) -> dict:
        try:
            return json.loads((slot / SLOT_RECORD).read_text()) if slot else {}
        except (OSError, ValueError):
            return {}

    def _load_state(self) -> dict:
        state = {"accepted_sequence": 0, "accepted_sha256": None, "rejected": {}, "last_event": None}
        try:
            state.update(json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            pass
        except ValueError:
            log.warning("ignoring unreadable %s", self.state_path)
        return state

    def _save_state(self) -> None:
        atomic_write_json(self.state_path, self.state)

    def status(self) -> dict:
        download = self._download
        return {
            "channel": self.channel,
            "accepted_sequence": self.state["accepted_sequence"],
            "active": self.slots.describe(self.slots.active()),
            "previous": self.slots.describe(self.slots.previous()),
            "download": None
            if download is None
            else {
                "version": download.manifest["version"],
                "received": len(download.received),
                "total": download.total_chunks,
            },
            "last_event": self.state.get("last_event"),
        }


def unpack_bundle(archive: Path, dest: Path) -> None:
    """Stream a bundle tar into `dest`. Only flat regular files are allowed (no paths, links, devices)."""
    dest.mkdir(parents=True)
    seen: set[str] = set()
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                name = member.name
                if not member.isfile() or Path(name).name != name or name in seen or name.startswith("."):
                    raise TransferRejected("bad_archive", f"unexpected tar entry {name!r}")
                seen.add(name)
                source = tar.extractfile(member)
                with source, open(dest / name, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TransferRejected("bad_archive", f"cannot unpack the bundle: {exc}") from None
