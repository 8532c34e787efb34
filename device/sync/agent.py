"""The device sync agent: store-and-forward prediction logs up, model updates down, one MQTT session.

It wires three parts together and runs the upload thread:
- the transport (device.sync.transport): the MQTT session, its status topic and acknowledgements;
- the upload pipeline (device.sync.upload): unsynced rows -> batches -> rows marked synced once the
  transport confirms delivery, within the buffer cap;
- the OTA updater (device.sync.ota), when a signing key is configured.

One agent per device: a lock file in `models_dir` refuses a second one (it would share the MQTT
client id and keep kicking the first off); holding it is also how another process tells that the
agent runs (device.sync.status.agent_running). The agent writes its state to `sync_state.json` there
when something a reader cares about changes (connection, errors, OTA, drops, every batch in flight
acknowledged), and refreshes the counters in it at most once a minute otherwise: no SD-card write every
few seconds on an idle device.

The upload thread never dies of a store error (a lock held past the busy timeout, a full disk, an
I/O error): each iteration is guarded, a failure is logged, counted and shown in the state (and
/healthz) with the last error, and the loop retries with exponential backoff.
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
from device.sync.upload import ACK_TIMEOUT_S, MAX_INFLIGHT_BATCHES, UploadCounters, UploadPipeline, now_iso
from shared.errors import UserError
from shared.files import atomic_write_json
from shared.mqtt.client import BrokerSettings

log = logging.getLogger("careeredge.sync")

STATE_FILE = "sync_state.json"
LOCK_FILE = ".sync.lock"
UPLOAD_LEDGER_FILE = "upload_state.json"
COUNTER_REFRESH_S = 60.0  # counters alone (rows published, acked) rewrite the state file at most this often
BUFFER_COUNT_INTERVAL_S = 2.0
ERROR_BACKOFF_S = (1.0, 60.0)  # first and longest wait after a failed upload iteration
LOCK_ATTEMPTS_S = 1.0  # a status reader holds the lock for microseconds; wait that out before refusing
# Fast-moving fields: they alone do not justify a write (readers in another process count the store).
VOLATILE_STATE = frozenset(
    {"updated_at", "buffer_rows", "inflight_rows", "published_rows", "acked_rows", "last_ack_at"}
)


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
    ack_timeout_s: float = ACK_TIMEOUT_S  # first wait for the collector's acknowledgement before a re-send
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
            allow_plaintext_password=sync.allow_plaintext_password,
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
        self.skew_summary = None  # callable -> the device's skew summary to send, or None (device.monitoring)
        self._upload_thread: threading.Thread | None = None
        self.upload_health = UploadHealth()
        self._lock_fd: int | None = None
        self._written_state: dict | None = None
        self._written_at = 0.0
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
        self._write_state_file(force=True)
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
        store, pipeline = None, None
        backoff = ERROR_BACKOFF_S[0]
        last_count = 0.0
        while not self._stop.is_set():
            try:
                if pipeline is None:
                    store = store or self._store_factory()
                    pipeline = self.pipeline = self._make_pipeline(store)
                self.transport.dispatch_deliveries(pipeline)
                published = pipeline.step()
                if time.monotonic() - last_count >= BUFFER_COUNT_INTERVAL_S:
                    pipeline.refresh_buffer_rows()
                    last_count = time.monotonic()
                self.upload_health.iterated()
                backoff = ERROR_BACKOFF_S[0]
                self._write_state_file()
                if not published:
                    self._wake.wait(self.settings.poll_interval_s)
                    self._wake.clear()
            except Exception as exc:  # a store or transport error must not end uploads for good
                self.upload_health.failed(exc)
                log.error("sync upload failed (%s: %s); retrying in %.0fs", type(exc).__name__, exc, backoff)
                if pipeline is not None:
                    pipeline.forget_read_ahead()
                self._write_state_file()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_S[1])
        try:
            if pipeline is not None:
                self._drain(pipeline)
        except Exception as exc:
            log.warning("sync upload stopped before its last acknowledgements were recorded: %s", exc)
        finally:
            if self._close_store and store is not None:
                store.close()

    def _make_pipeline(self, store) -> UploadPipeline:
        pipeline = UploadPipeline(
            store,
            self.transport,
            self.settings.device_id,
            batch_size=self.settings.batch_size,
            buffer_cap_rows=self.settings.buffer_cap_rows,
            counters=self.counters,
            ack_timeout_s=self.settings.ack_timeout_s,
            ledger_path=Path(self.settings.models_dir) / UPLOAD_LEDGER_FILE,
        )
        pipeline.skew_summary = self.skew_summary
        return pipeline

    def _drain(self, pipeline: UploadPipeline) -> None:
        deadline = time.monotonic() + 2.0  # let the last acknowledgements land so they are not re-sent later
        while pipeline.inflight_batches and self.transport.connected and time.monotonic() < deadline:
            self._wake.wait(0.05)
            self._wake.clear()
            self.transport.dispatch_deliveries(pipeline)
        self.transport.dispatch_deliveries(pipeline)
        pipeline.refresh_buffer_rows()

    # --- state for the status page -----------------------------------------------------------------------

    def state(self) -> dict:
        ota = self.ota.status() if self.ota else None
        active = ota["active"] if ota else None
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
            "dead_lettered_rows": self.counters.dead_lettered_rows,
            "dropped_rows": self.counters.dropped_rows,
            "invalid_rows": self.counters.invalid_rows,
            "last_ack_at": self.counters.last_ack_at,
            "upload": self.upload_health.as_dict(self._upload_thread),
            "active_model_version": active["version"] if active else None,
            "ota": ota,
            "updated_at": now_iso(),
        }

    def _write_state_file(self, force: bool = False) -> None:
        """Write the state when a reader-visible field changed, or counters after COUNTER_REFRESH_S."""
        state = self.state()
        significant = {k: v for k, v in state.items() if k not in VOLATILE_STATE}
        significant["upload"] = {k: v for k, v in state["upload"].items() if k != "last_iteration_at"}
        # Caught up (nothing in flight) is worth a write: the status then shows the final counts at once,
        # and an idle device, caught up all along, still writes nothing.
        significant["caught_up"] = state["inflight_rows"] == 0
        stale = time.monotonic() - self._written_at >= COUNTER_REFRESH_S
        if not force and self._written_state is not None:
            if significant == self._written_state[0] and (not stale or state_counters(state) == self._written_state[1]):
                return
        path = Path(self.settings.models_dir) / STATE_FILE
        try:
            atomic_write_json(path, state)
        except OSError as exc:
            log.debug("could not write %s: %s", path, exc)
            return
        self._written_state = (significant, state_counters(state))
        self._written_at = time.monotonic()


def state_counters(state: dict) -> tuple:
    return tuple(state.get(k) for k in ("buffer_rows", "inflight_rows", "published_rows", "acked_rows"))


class UploadHealth:
    """Liveness of the upload thread: when it last completed an iteration, and its last error."""

    def __init__(self) -> None:
        self.last_iteration_at: str | None = None
        self.errors = 0
        self.consecutive_errors = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None

    def iterated(self) -> None:
        self.last_iteration_at = now_iso()
        if self.consecutive_errors:
            log.warning("sync upload works again after %d failed attempts", self.consecutive_errors)
        self.consecutive_errors = 0

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        self.consecutive_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.last_error_at = now_iso()

    def as_dict(self, thread: threading.Thread | None) -> dict:
        return {
            "alive": thread is not None and thread.is_alive(),
            "failing": self.consecutive_errors > 0,
            "last_iteration_at": self.last_iteration_at,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def _acquire_device_lock(models_dir: Path) -> int:
    """One agent per device: two would share one MQTT client id and keep kicking each other off."""
    models_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(models_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_ATTEMPTS_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
        os.close(fd)
        raise UserError(
            f"another sync agent already runs for {models_dir} (one MQTT session per device; use "
            "either `careeredge sync` or [sync] enabled = true in the daemon)"
        ) from None


_active_agents: set[SyncAgent] = set()


def running_agent() -> SyncAgent | None:
    """The agent running in this process, if any (the daemon's status page reads it)."""
    return next(iter(_active_agents), None)
