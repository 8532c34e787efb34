"""The device sync agent: store-and-forward prediction logs up, model updates down, one MQTT session.

It wires three parts together and runs the upload thread:
- the transport (device.sync.transport): the MQTT session, its status topic and acknowledgements;
- the upload pipeline (device.sync.upload): unsynced rows -> batches -> rows marked synced once the
  transport confirms delivery, within the buffer cap;
- the OTA updater (device.sync.ota), when a signing key is configured.

One agent per device: a lock file in `models_dir` refuses a second one (it would share the MQTT
client id and keep kicking the first off). The agent writes its state to `sync_state.json` there,
so a status page in another process can show it (device.sync.status).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.sync.transport import MqttTransport
from device.sync.upload import MAX_INFLIGHT_BATCHES, UploadCounters, UploadPipeline, now_iso
from shared.errors import UserError
from shared.files import atomic_write_json
from shared.mqtt.client import BrokerSettings

log = logging.getLogger("careeredge.sync")

STATE_WRITE_INTERVAL_S = 2.0
STATE_FILE = "sync_state.json"


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
            batch_size=sync.batch_size,
            fallback_bundle=Path(config.model.bundle),
        )


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
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.transport = MqttTransport(
            settings.device_id,
            settings.broker,
            max_inflight_messages=MAX_INFLIGHT_BATCHES + 16,
            on_connected=self._on_connected,
            on_message=self._on_message,
            on_acknowledged=self._wake.set,
        )
        self.pipeline: UploadPipeline | None = None  # built by the upload thread, on its store
        self._upload_thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self.ota = self._make_updater(enable_ota, on_model_activated, health_check)

    def _make_updater(self, enable_ota, on_model_activated, health_check):
        if not enable_ota:
            return None
        if self.settings.public_key is None:
            log.warning("no [sync] public_key configured: over-the-air model updates are disabled")
            return None
        from device.sync.ota import OtaUpdater
        from shared.signing import Keyring, load_public_keys

        kwargs = {"health_check": health_check} if health_check else {}
        return OtaUpdater(
            self.settings.device_id,
            self.settings.channel,
            self.settings.models_dir,
            Keyring(load_public_keys(self.settings.public_key)),
            transport=self.transport,
            on_activated=on_model_activated,
            fallback_bundle=self.settings.fallback_bundle,
            **kwargs,
        )

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SyncAgent:
        self._lock_fd = _acquire_device_lock(Path(self.settings.models_dir))
        if self.ota is not None:
            self.ota.start()
        self._upload_thread = threading.Thread(target=self._upload_loop, name="careeredge-sync-upload", daemon=True)
        self._upload_thread.start()
        self.transport.start()
        _active_agents.add(self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drain acknowledgements, say `offline`, disconnect."""
        self._stop.set()
        self._wake.set()
        if self._upload_thread is not None:
            self._upload_thread.join(timeout)
        self.transport.announce_offline()
        if self.ota is not None:
            self.ota.stop()
        self.transport.disconnect()
        _active_agents.discard(self)
        self._write_state_file()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def wait_connected(self, timeout: float) -> bool:
        return self.transport.wait_connected(timeout)

    # --- transport callbacks (network thread: keep them tiny) ------------------------------------------

    def _on_connected(self) -> None:
        if self.ota is not None:
            self.ota.submit_connected()
        self._wake.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self.ota is not None:
            self.ota.submit(topic, payload)

    # --- upload loop (its own thread, its own store connection) -------------------------------------

    def _upload_loop(self) -> None:
        store = self._store_factory()
        pipeline = self.pipeline = UploadPipeline(
            store,
            self.transport,
            self.settings.device_id,
            batch_size=self.settings.batch_size,
            buffer_cap_rows=self.settings.buffer_cap_rows,
            counters=self.counters,
        )
        last_state_write = 0.0
        try:
            while not self._stop.is_set():
                self.transport.dispatch_deliveries(pipeline)
                published = pipeline.step()
                now = time.monotonic()
                if now - last_state_write >= STATE_WRITE_INTERVAL_S:
                    pipeline.refresh_buffer_rows()
                    self._write_state_file()
                    last_state_write = now
                if not published:
                    self._wake.wait(self.settings.poll_interval_s)
                    self._wake.clear()
            deadline = time.monotonic() + 2.0  # let the last PUBACKs land so they are not re-sent later
            while pipeline.inflight_batches and self.transport.connected and time.monotonic() < deadline:
                self._wake.wait(0.05)
                self._wake.clear()
                self.transport.dispatch_deliveries(pipeline)
            self.transport.dispatch_deliveries(pipeline)
            pipeline.refresh_buffer_rows()
        except Exception:
            log.exception("sync upload loop failed")
        finally:
            if self._close_store:
                store.close()

    # --- state for the status page -----------------------------------------------------------------------

    def state(self) -> dict:
        active = self.ota.slots.describe(self.ota.slots.active()) if self.ota else None
        return {
            "running": not self._stop.is_set(),
            "device_id": self.settings.device_id,
            "broker": self.settings.broker.address,
            "broker_connected": self.transport.connected,
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
            "updated_at": now_iso(),
        }

    def _write_state_file(self) -> None:
        path = Path(self.settings.models_dir) / STATE_FILE
        try:
            atomic_write_json(path, self.state())
        except OSError as exc:
            log.debug("could not write %s: %s", path, exc)


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
