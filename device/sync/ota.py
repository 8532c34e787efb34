"""Over-the-air model updates: signed manifest -> chunks -> verify -> stage -> health check -> swap -> confirm.

The device acts on the channel's retained manifest only if
  1. it parses and passes the contract (size-limited),
  2. its ed25519 signature verifies with a key the device trusts (device.sync.trust: the pinned
     keys, plus keys introduced by rotation records signed by a trusted key),
  3. its `sequence` is newer than the last one this device accepted (no replays, no downgrades).
Then, in steps that each survive a kill -9 at any instant:
  download  chunks, each checked against the signed per-chunk sha256, written to disk and fsynced
            (resumable); a chunk that fails its check is fetched again, never a reason to reject
            the release (only a signature or the signed bytes themselves can reject a release);
  verify    the whole file's size and sha256;
  stage     unpack into a slot, fsync, verify the bundle's own signed manifest and file hashes;
  health    the staged slot's golden examples, run before anything serves it;
  swap      a pending marker records the links, then `active` points at the new slot and the
            daemon reloads (device.sync.slots: boot, confirm or roll back);
  confirm   the marker goes, then the accepted sequence is saved (atomically, fsynced).
A boot that finds an unconfirmed swap puts the recorded links back and reports `rolled_back`
(`unconfirmed`); a release that never gets confirmed in MAX_UNCONFIRMED_BOOTS boots is rejected.

The accepted sequence never resets silently: a missing `ota_state.json` is rebuilt from the signed
OTA manifest stored in the active and previous slots (a floor), and an unreadable one stops all
updates with an alarm in the status until someone repairs or removes it.

Every rejection and rollback is reported on `careeredge/v1/devices/<id>/ota`; the old model stays live.

Threading: paho's network thread only enqueues messages (`submit`); one worker thread runs all of
the logic below, so no state here is shared between threads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import tarfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device.sync.download import TRANSIENT_REASONS, ChunkedDownload, TransferRejected
from device.sync.healthcheck import HealthReport, golden_health_check
from device.sync.slots import ModelSlots, slot_name
from device.sync.trust import load_keyring, save_keyring
from shared.bundle import BundleError, verify_bundle
from shared.files import atomic_write_json, fsync_dir
from shared.mqtt.contract import MODEL_STATE, OTA_EVENT, OTA_MANIFEST, ContractError, Topics, bundle_id
from shared.signing import Keyring, SignatureError, apply_rotations, verify_manifest

log = logging.getLogger("careeredge.sync.ota")

CHUNK_WINDOW = 8  # chunk topics subscribed at once: bounds memory and broker fan-out per device
STATE_FILE = "ota_state.json"
DOWNLOADS = "downloads"
SLOT_RECORD = "ota.json"  # written into each slot: the signed OTA manifest that produced it
MAX_REMEMBERED_REJECTIONS = 50
MAX_CHUNK_ATTEMPTS = 3  # copies of one chunk tried per session before the transfer pauses
MAX_UNCONFIRMED_BOOTS = 3  # boots that found a release's swap unconfirmed before it is rejected


class StateUnreadable(Exception):
    """`ota_state.json` exists but cannot be trusted: updates stop until someone looks at it."""


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
        trusted_keys: Ed25519PublicKey | Keyring,
        transport: OtaTransport,
        health_check: Callable[[Path], HealthReport] = golden_health_check,
        on_activated: Callable[[Path], bool | None] | None = None,
        fallback_bundle: Path | None = None,
        window: int = CHUNK_WINDOW,
    ):
        self.device_id = device_id
        self.channel = channel
        self.models_dir = Path(models_dir)
        self.transport = transport
        self.health_check = health_check
        # Called with the bundle to serve after every switch (the daemon reloads its model); False
        # means it could not load it, and the swap is rolled back.
        self.on_activated = on_activated
        self.fallback_bundle = fallback_bundle
        self.window = window
        self.slots = ModelSlots(self.models_dir).ensure()
        self.keyring = load_keyring(trusted_keys, self.models_dir)
        self.state_path = self.models_dir / STATE_FILE
        self.alarm: str | None = None
        self.state = self._load_state()
        self._boot_events: list[tuple] = []
        self._revert_unconfirmed_swap()
        self._apply_sequence_floor()
        self._discard_installed_partials()
        self.manifest_topic = Topics.model_manifest(channel)
        self._download: ChunkedDownload | None = None
        self._requested: set[int] = set()
        self._bad_copies: dict[int, int] = {}
        self._refused_while_alarmed: set[str] = set()
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
        while self._boot_events:
            self._report(*self._boot_events.pop(0))
        self.transport.subscribe([self.manifest_topic])
        self.publish_model_state()
        if self._download is not None:
            self._requested.clear()
            self._bad_copies.clear()
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
            self._verify_signer(manifest)
        except (ContractError, SignatureError) as exc:
            self._reject(None, exc.reason, str(exc), remember=payload_digest)
            return
        if self.alarm is not None:
            if payload_digest not in self._refused_while_alarmed:
                self._refused_while_alarmed.add(payload_digest)
                self._reject(manifest, "state_unreadable", self.alarm, remember=None)
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

    def _verify_signer(self, manifest: dict) -> None:
        """Verify with the trusted keys; a manifest signed by a key they do not know may carry the
        rotation records that introduce it. Learned keys are kept only once the manifest verifies."""
        keyring = self.keyring
        rotations = manifest.get("key_rotations") or []
        if rotations and keyring.get(manifest["key_id"]) is None:
            keyring = apply_rotations(keyring, rotations)
        verify_manifest(manifest, keyring)
        if keyring is not self.keyring:
            save_keyring(keyring, self.models_dir)
            log.warning("trusting signing key %s (rotation signed by a trusted key)", manifest["key_id"])
            self.keyring = keyring

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
            if exc.reason in TRANSIENT_REASONS:
                self._retry_chunk(index, exc)
            else:
                self._fail_download(exc)
            return
        if download.complete:
            self._finish(download)
        else:
            self._request_missing()

    def _retry_chunk(self, index: int, exc: TransferRejected) -> None:
        """A bad copy of a chunk (bit flip, truncation, a forged retained message): fetch it again. After
        MAX_CHUNK_ATTEMPTS copies the transfer pauses until the next reconnect or manifest."""
        self._bad_copies[index] = self._bad_copies.get(index, 0) + 1
        if self._bad_copies[index] < MAX_CHUNK_ATTEMPTS:
            log.warning("%s; fetching chunk %d again", exc, index)
            self._request_missing()
            return
        self._unsubscribe_requested()
        log.warning("%s (%d copies); transfer paused until the next reconnect", exc, self._bad_copies[index])
        self._report(
            "download_paused",
            self._download.manifest,
            reason=exc.reason,
            detail=f"{exc.detail}; {self._bad_copies[index]} copies tried, resuming at the next reconnect",
        )

    # --- transfer ----------------------------------------------------------------------------------

    def _start_download(self, manifest: dict) -> None:
        if self._download is not None:
            if self._download.manifest["sha256"] == manifest["sha256"]:
                self._bad_copies.clear()  # a re-published manifest: try the chunks again
                self._request_missing()
                return
            log.info(
                "abandoning transfer of %s for newer sequence %s",
                self._download.manifest["version"],
                manifest["sequence"],
            )
            self._unsubscribe_requested()
            self._download.discard()
        self._discard_partials(lambda name: not name.startswith(manifest["sha256"]))  # other releases' partials
        self._download = download = ChunkedDownload(self.models_dir / DOWNLOADS, manifest)
        self._requested.clear()
        self._bad_copies.clear()
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

    def _discard_partials(self, discard: Callable[[str], bool]) -> None:
        """Delete the partial downloads whose file name `discard` picks."""
        downloads = self.models_dir / DOWNLOADS
        if downloads.is_dir():
            for path in downloads.iterdir():
                if discard(path.name):
                    path.unlink(missing_ok=True)

    def _discard_installed_partials(self) -> None:
        """A kill between confirming a release and deleting its download leaves the file behind."""
        accepted = self.state.get("accepted_sha256")
        if accepted:
            self._discard_partials(lambda name: name.startswith(accepted))

    def _fail_download(self, exc: TransferRejected) -> None:
        download, self._download = self._download, None
        self._unsubscribe_requested()
        if download is not None:
            download.discard()
            self._reject(download.manifest, exc.reason, exc.detail, remember=download.manifest["sha256"])

    def _finish(self, download: ChunkedDownload) -> None:
        """verify -> stage -> health check -> swap -> confirm. The download stays on disk until the
        release is confirmed, so a kill at any later step resumes without fetching a chunk again."""
        manifest = download.manifest
        try:
            archive = download.verify()
            slot = self._stage(archive, manifest)
        except TransferRejected as exc:
            if exc.reason in TRANSIENT_REASONS:  # chunks rotted on disk: fetch what no longer matches
                log.warning("%s; fetching them again", exc)
                self._request_missing()
                return
            self._fail_download(exc)
            return
        report = self.health_check(slot)
        if not report.ok:
            self._download = None
            download.discard()
            log.warning("health check of %s failed (%s); the current model stays", manifest["version"], report.detail)
            self._reject(manifest, "health_check_failed", report.detail, remember=manifest["sha256"])
            return
        if not self._swap(slot, manifest):
            self._download = None
            download.discard()
            return
        self._download = None
        download.discard()
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

    def _stage(self, archive: Path, manifest: dict) -> Path:
        """Unpack into `slots/<version>-<sha8>` (fsynced), verified, with the signed OTA manifest
        recorded inside. An intact slot from an interrupted earlier attempt is reused."""
        name = slot_name(manifest["version"], manifest["sha256"])
        existing = self.slots.slots_dir / name
        if existing.is_dir():
            try:
                self._verify_unpacked(existing, manifest)
                self._write_slot_record(existing, manifest)
                return existing
            except TransferRejected:
                if existing.resolve() in (self.slots.active(), self.slots.previous()):
                    raise
                shutil.rmtree(existing, ignore_errors=True)  # a damaged leftover: unpack it again
        staging = self.slots.slots_dir / f".staging-{manifest['sha256'][:16]}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            unpack_bundle(archive, staging)
            self._verify_unpacked(staging, manifest)
            self._write_slot_record(staging, manifest)
        except TransferRejected:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.slots.install(staging, name)

    @staticmethod
    def _write_slot_record(slot: Path, manifest: dict) -> None:
        record = {k: manifest[k] for k in ("channel", "sequence", "sha256", "version", "name")}
        atomic_write_json(slot / SLOT_RECORD, record | {"installed_at": _now(), "manifest": manifest})

    def _verify_unpacked(self, staging: Path, manifest: dict) -> None:
        try:
            bundle_manifest = verify_bundle(staging)
        except BundleError as exc:
            raise TransferRejected("bundle_invalid", str(exc)) from None
        try:
            verify_manifest(bundle_manifest, self.keyring)
        except SignatureError as exc:
            raise TransferRejected(
                f"bundle_{exc.reason}", "the bundle's manifest.json is not signed by a trusted key"
            ) from None
        if str(bundle_manifest["version"]) != manifest["version"]:
            raise TransferRejected(
                "version_mismatch", f"bundle says version {bundle_manifest['version']}, manifest {manifest['version']}"
            )

    # --- swap, confirm, roll back --------------------------------------------------------------------

    def _swap(self, slot: Path, manifest: dict) -> bool:
        """Point `active` at the checked slot behind a pending marker, let the daemon load it, confirm.
        False when the daemon could not load it (the links are put back and the release rejected)."""
        self.slots.begin_swap(slot, sequence=manifest["sequence"], sha256=manifest["sha256"])
        if self.on_activated is not None and self.on_activated(self.slots.active_link) is False:
            marker = self.slots.revert_unconfirmed()
            self._serve_confirmed()
            log.warning("the daemon could not load %s; rolled back to %s", manifest["version"], marker.get("active"))
            self._remember_rejection(manifest["sha256"], "load_failed")
            self._report("rolled_back", manifest, reason="load_failed", detail="the daemon could not load the bundle")
            self.publish_model_state()
            return False
        self.slots.confirm()  # the marker goes first: see _apply_sequence_floor for a kill right here
        self.state.update(accepted_sequence=manifest["sequence"], accepted_sha256=manifest["sha256"])
        self.state.get("unconfirmed_boots", {}).pop(manifest["sha256"], None)
        self._save_state()
        return True

    def _serve_confirmed(self) -> None:
        serve = self.slots.active_link if self.slots.active() is not None else self.fallback_bundle
        if self.on_activated is not None and serve is not None:
            self.on_activated(serve)

    def _revert_unconfirmed_swap(self) -> None:
        """Boot: a pending marker means the process died between a swap and its confirmation."""
        marker = self.slots.revert_unconfirmed()
        if marker is None:
            return
        record = self._slot_record(self.slots.slot_named(marker.get("slot")))
        sha256 = marker.get("sha256") or record.get("sha256")
        manifest = {k: record.get(k) or marker.get(k) for k in ("sequence", "version", "sha256")}
        log.warning("the swap to %s was never confirmed: back on %s", marker.get("slot"), marker.get("active"))
        if self.alarm is None and isinstance(sha256, str):
            boots = self.state.setdefault("unconfirmed_boots", {})
            boots[sha256] = boots.get(sha256, 0) + 1
            if boots[sha256] >= MAX_UNCONFIRMED_BOOTS:
                self._remember_rejection(sha256, "unconfirmed")
            else:
                self._save_state()
        self._boot_events.append(
            ("rolled_back", manifest, "unconfirmed", f"swap to {marker.get('slot')} not confirmed before a restart")
        )

    # --- reporting and state ---------------------------------------------------------------------------

    def _reject(self, manifest: dict | None, reason: str, detail: str, remember: str | None) -> None:
        log.warning(
            "rejected OTA update%s: %s (%s); keeping the current model",
            f" {manifest['version']}" if manifest else "",
            reason,
            detail,
        )
        if remember is not None:
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
            "sequence": manifest.get("sequence") if manifest else None,
            "version": manifest.get("version") if manifest else None,
            "sha256": manifest.get("sha256") if manifest else None,
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
            record = json.loads((slot / SLOT_RECORD).read_text()) if slot else {}
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _load_state(self) -> dict:
        state = {"accepted_sequence": 0, "accepted_sha256": None, "rejected": {}, "last_event": None}
        try:
            loaded = parse_state(self.state_path)
        except FileNotFoundError:
            return state
        except StateUnreadable as exc:
            self.alarm = (
                f"{self.state_path} is unreadable ({exc}): over-the-air updates are refused until it is "
                "repaired; delete it to rebuild the accepted sequence from the installed slots"
            )
            log.error("%s", self.alarm)
            return state
        return state | loaded

    def _apply_sequence_floor(self) -> None:
        """The accepted sequence is at least that of the signed manifests the installed slots record."""
        floor, floor_sha = 0, None
        for slot in (self.slots.active(), self.slots.previous()):
            signed = self._slot_record(slot).get("manifest")
            try:
                verify_manifest(signed, self.keyring)
            except (SignatureError, AttributeError, TypeError):
                continue  # no signed record (installed by hand, or by an older version): no floor from it
            if isinstance(signed.get("sequence"), int) and signed["sequence"] > floor:
                floor, floor_sha = signed["sequence"], signed.get("sha256")
        if floor > self.state["accepted_sequence"]:
            if self.alarm is None and self.state_path.exists():
                log.warning(
                    "accepted sequence %d raised to %d by the installed slots", self.state["accepted_sequence"], floor
                )
            elif self.alarm is None:
                log.warning(
                    "%s is missing: accepted sequence rebuilt as %d from the installed slots", self.state_path, floor
                )
            self.state.update(accepted_sequence=floor, accepted_sha256=floor_sha)
            self._save_state()

    def _save_state(self) -> None:
        if self.alarm is not None:
            return  # never overwrite the evidence; the state lives in memory until someone repairs the file
        atomic_write_json(self.state_path, self.state)

    def status(self) -> dict:
        download = self._download
        return {
            "channel": self.channel,
            "accepted_sequence": self.state["accepted_sequence"],
            "active": self.slots.describe(self.slots.active()),
            "previous": self.slots.describe(self.slots.previous()),
            "pending": self.slots.pending(),
            "trusted_keys": self.keyring.ids,
            "alarm": self.alarm,
            "download": None
            if download is None
            else {
                "version": download.manifest["version"],
                "received": len(download.received),
                "total": download.total_chunks,
            },
            "last_event": self.state.get("last_event"),
        }


def parse_state(path: Path) -> dict:
    """The state file's content, type-checked. FileNotFoundError when absent; StateUnreadable otherwise."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateUnreadable(exc.strerror or str(exc)) from None
    try:
        state = json.loads(raw)
    except ValueError as exc:
        raise StateUnreadable("empty file" if not raw.strip() else f"not JSON: {exc}") from None
    if not isinstance(state, dict):
        raise StateUnreadable("not a JSON object")
    sequence = state.get("accepted_sequence")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise StateUnreadable(f"accepted_sequence is {sequence!r}")
    if not isinstance(state.get("rejected", {}), dict):
        raise StateUnreadable("rejected is not an object")
    return state


def unpack_bundle(archive: Path, dest: Path) -> None:
    """Stream a bundle tar into `dest`, every file fsynced (a slot is renamed into place only once its
    bytes are on disk). Only flat regular files are allowed (no paths, links, devices)."""
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
                    target.flush()
                    os.fsync(target.fileno())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TransferRejected("bad_archive", f"cannot unpack the bundle: {exc}") from None
    fsync_dir(dest)
