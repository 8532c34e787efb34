"""The daemon: one loaded model, one prediction store, shared by the web page, the JSON API and
(in-process) the TUI.

`Daemon` is the service object: it loads the active bundle once, classifies, writes every
prediction through the store, and reports health. It never refuses to start because of the model:
without a usable bundle it runs *degraded*, and `/healthz`, the page and the TUI say what is wrong
and how to fix it. The fronts get one handed to them: `careeredge serve` (device.serve_command) builds
it and runs it under waitress; the TUI builds its own.

Which bundle is active: `--model` when given; else the over-the-air slot the sync agent activated
(`[sync] models_dir/active`); else `[model] bundle`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from device.advice import DemandTable, advise
from device.batcher import BatcherClosed, MicroBatcher
from device.config import Config
from device.heap import return_freed_memory
from device.inputs import prepare_text
from device.store import PredictionStore, StoreError, StoreWriteError
from device.sync.slots import resolve_bundle
from shared.errors import UserError
from shared.skills import find_skills
from shared.text import clean_text, model_input

log = logging.getLogger(__name__)

# Up to 4 queued requests share one model call: most of the batching gain on 2-4 cores, at half
# the activation memory of 8 (ONNX Runtime's arena keeps the peak a batch reached).
MAX_BATCH = 4
PRUNE_INTERVAL_S = 6 * 3600
# An explanation is up to 17 inferences. They go through the same inference workers as every
# prediction (so memory stays at one MAX_BATCH activation set per worker), and at most this many explanations
# are in the queue at once, so they cannot starve plain predictions; the rest wait up to
# EXPLAIN_WAIT_S for a turn, then get "busy, retry" (429).
MAX_CONCURRENT_EXPLAINS = 2
# A request that meets a closed batcher (its model replaced as it queued) tries the current model again,
# up to this many times in all; only a daemon reloading over and over sends it away with 429.
MODEL_SWAP_RETRIES = 3
EXPLAIN_WAIT_S = 10.0


@dataclass
class Classification:
    """One answered request: the prediction, whether it was stored, and optional explanations."""

    prediction: Any  # device.runtime.base.Prediction
    uuid: str
    stored: bool
    text: str  # what was classified (after input preparation)
    notes: list[str] = field(default_factory=list)
    store_error: str | None = None
    driving_terms: list[tuple[str, float]] | None = None
    advice: Any = None  # device.advice.Advice
    skill_matches: list = field(default_factory=list)

    @cached_property
    def cleaned_text(self) -> str:
        """clean_text(text): what the model saw, for display and skill matching. Computed on first use:
        a plain API prediction never needs it, and it is ~1 ms of Python per posting under the GIL."""
        return clean_text(self.text)

    def to_json(self) -> dict:
        """The CLI `--json` object, plus `stored` (and the extras the request asked for)."""
        body = self.prediction.to_json(id=self.uuid)
        body["stored"] = self.stored
        if self.notes:
            body["notes"] = self.notes
        if self.driving_terms is not None:
            body["driving_terms"] = [{"term": t, "weight": round(w, 6)} for t, w in self.driving_terms]
        if self.advice is not None:
            body["advice"] = self.advice.to_json()
        return body


class Busy(RuntimeError):
    """Too much expensive work queued already: the client should retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int = 5):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelUnavailable(RuntimeError):
    """Raised by `classify` in degraded mode; carries the fix for the user."""

    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


class Daemon:
    def __init__(
        self, config: Config, bundle_dir: Path | None = None, open_store: bool = True, load_model: bool = True
    ):
        self.config = config
        self.started_at = time.time()
        self.bundle_dir = Path(bundle_dir or resolve_bundle(config))
        self.backend = None
        self.batcher: MicroBatcher | None = None
        self.model_error: str | None = None
        self.model_fix: str | None = None
        self.store: PredictionStore | None = None
        self.store_error: str | None = None
        self.demand: DemandTable | None = None  # loaded with the model (a bundle may bring trends)
        self.status_providers: dict[str, Callable[[], dict]] = {"sync": self._sync_state}
        self.shadow = None  # device.shadow.ShadowRunner when [model] shadow is set
        self.skew = None  # device.monitoring.SkewMonitor once the store is open
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._model_lock = threading.Lock()
        self._explain_slots = threading.BoundedSemaphore(MAX_CONCURRENT_EXPLAINS)
        if load_model:
            self.load_model(self.bundle_dir)
        if self.demand is None:  # no model loaded: the trends file and the shipped 2025 baseline
            self.demand = DemandTable.load(config.profile.trends_file, self.bundle_dir)
        if open_store:
            self._open_store()
        if load_model and self.store is not None and config.model.shadow is not None:
            self._load_shadow(config.model.shadow)

    # --- lifecycle -----------------------------------------------------------------------------
    def load_model(self, bundle_dir: Path) -> bool:
        """Load (or swap to) a bundle. On failure keep serving what was loaded, or run degraded."""
        from device.runtime import load_backend  # onnxruntime import cost paid here, once

        began = time.perf_counter()
        try:
            model = self.config.model
            backend = load_backend(bundle_dir, model.backend, model.threads, hef=model.hef)
        except (UserError, OSError, ValueError) as exc:  # BundleError is a UserError: missing / corrupt / tampered
            exc = exc if isinstance(exc, UserError) else UserError(f"cannot read bundle {bundle_dir}: {exc}")
            if self.backend is None:
                self.model_error = exc.format_message()
                self.model_fix = (
                    f"Install a model bundle at {bundle_dir} (build one with `make pipeline`: "
                    "artifacts/bundles/model_a_v1), or point the daemon at one with "
                    "`careeredge serve --model DIR` / [model] bundle in the config, or remove [model] bundle "
                    "to use the bundle shipped with the package; then restart."
                )
            log.error("model.unavailable", extra={"fields": {"bundle": str(bundle_dir), "error": exc.format_message()}})
            return False
        workers = model.inference_workers if backend.concurrent_calls else 1
        batcher = MicroBatcher(backend.predict_tokenized, max_batch=MAX_BATCH, workers=workers)
        with self._model_lock:
            previous = (self.backend, self.batcher)
            self.backend, self.batcher = backend, batcher
            self.bundle_dir, self.model_error, self.model_fix = Path(bundle_dir), None, None
        self.demand = DemandTable.load(self.config.profile.trends_file, bundle_dir)  # a new bundle may bring trends
        if backend.fallback_reason:  # an accelerator that could not run it: one line, the CPU serves
            log.warning("hailo.unavailable", extra={"fields": {"reason": backend.fallback_reason}})
        if previous[1] is not None:
            previous[1].close()  # drains what was queued on the old model first
        if previous[0] is not None:
            previous[0].close()
            del previous
            return_freed_memory()
        log.info(
            "model.loaded",
            extra={
                "fields": {
                    "bundle": str(bundle_dir),
                    "model_version": backend.model_version,
                    "backend": backend.type_key,
                    "load_s": round(time.perf_counter() - began, 3),
                }
            },
        )
        return True

    def _open_store(self) -> None:
        try:
            self.store = PredictionStore.from_config(self.config.store)
            log.info(
                "store.opened",
                extra={"fields": {"path": str(self.store.path), "schema_version": self.store.schema_version}},
            )
        except StoreError as exc:
            # Predictions still work without a store (they come back `stored: false`).
            self.store_error = str(exc)
            log.error("store.unavailable", extra={"fields": {"error": str(exc)}})

    def _load_shadow(self, bundle_dir: Path) -> None:
        """Load the [model] shadow bundle; a bad one is logged and skipped (serving never depends on it)."""
        from device.runtime import load_backend
        from device.shadow import ShadowRunner

        try:
            backend = load_backend(bundle_dir, self.config.model.backend, self.config.model.threads)
        except UserError as exc:
            log.error(
                "shadow.unavailable", extra={"fields": {"bundle": str(bundle_dir), "error": exc.format_message()}}
            )
            return
        self.shadow = ShadowRunner(backend, self.store)
        self.status_providers["shadow"] = lambda: {"bundle": str(bundle_dir), **self.shadow.model,
                                                   **self.shadow.stats.to_json()}  # fmt: skip
        self.on_shutdown(self.shadow.close)

    def start_skew_monitor(self) -> None:
        """Compute the device's own skew now and every [monitoring] interval_s (device.monitoring)."""
        if self.store is None:
            return
        from device.monitoring import SkewMonitor

        self.skew = SkewMonitor(self.store, self.config.monitoring.window)
        self.status_providers["monitoring"] = self.skew.status
        self.on_shutdown(self.skew.start(self.config.monitoring.interval_s).set)

    def start_retention(self, interval_s: float = PRUNE_INTERVAL_S) -> None:
        """Prune synced rows older than [store] retention_days now and then every `interval_s`."""
        stop = threading.Event()

        def loop() -> None:
            while True:
                if self.store is not None and self.config.store.retention_days > 0:
                    try:
                        self.store.prune(self.config.store.retention_days)
                    except StoreError as exc:
                        log.error("store.prune_failed", extra={"fields": {"error": str(exc)}})
                if stop.wait(interval_s):
                    return

        thread = threading.Thread(target=loop, name="careeredge-retention", daemon=True)
        thread.start()
        self.on_shutdown(stop.set)

    def add_status_provider(self, name: str, provider: Callable[[], dict]) -> None:
        """Let another component (the sync agent) add a section to /api/v1/status and the page."""
        self.status_providers[name] = provider

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        self._shutdown_hooks.append(hook)

    def close(self) -> None:
        for hook in reversed(self._shutdown_hooks):
            try:
                hook()
            except Exception:  # one failing hook must not keep the store open
                log.exception("shutdown.hook_failed")
        if self.store is not None:
            self.store.close()
        if self.batcher is not None:
            self.batcher.close()
        if self.backend is not None:
            self.backend.close()

    # --- work --------------------------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        return self.backend is None

    def inference_alive(self, max_call_s: float) -> bool:
        """False when the inference worker died or one model call has run for `max_call_s` (the
        watchdog's check). A degraded daemon has no worker and is alive: it serves the fix."""
        with self._model_lock:
            batcher = self.batcher
        return batcher is None or batcher.alive(max_call_s)

    def classify(
        self,
        raw_text: str | bytes,
        source: str,
        uuid: str | None = None,
        explain: bool = False,
        with_advice: bool = False,
        profile_skills: list[str] | None = None,
    ) -> Classification:
        """Prepare, predict, store. Raises UserError for bad input, ModelUnavailable when degraded."""
        if self.backend is None:
            raise ModelUnavailable(self.model_error or "no model loaded", self.model_fix or "")
        prepared = prepare_text(raw_text, source="text")
        with self._explain_turn() if explain else contextlib.nullcontext():  # before anything is stored
            backend, batcher, prediction = self._predict_on_current_model(prepared.text)
            result = Classification(
                prediction=prediction, uuid=uuid or "", stored=False, text=prepared.text, notes=list(prepared.notes)
            )
            self._store(result, backend, source)
            if explain or with_advice:
                result.skill_matches = find_skills(result.cleaned_text)
            if explain:
                try:
                    result.driving_terms = self._explain(backend, batcher, prepared.text)
                except BatcherClosed:  # the model was replaced meanwhile: its terms would explain another model
                    result.notes.append("driving terms not computed: the model was replaced during the request")
        if self.shadow is not None and result.stored:
            # Queued only: the shadow scores it in its own thread, after this answer is on its way.
            self.shadow.submit(result.uuid, prepared.text)
        if with_advice:
            skills = self.config.profile.skills if profile_skills is None else profile_skills
            result.advice = advise(
                result.cleaned_text,
                prediction.label,
                prediction.confidence,
                skills,
                table=self.demand,
                matches=result.skill_matches,
            )
        return result

    def _predict_on_current_model(self, text: str) -> tuple[Any, MicroBatcher, Any]:
        """(backend, batcher, Prediction) from the model loaded now. A reload swaps the model, then closes
        the old batcher: a request that read the old pair just before the swap is refused by the closed
        batcher (BatcherClosed) and runs again, tokenized for the new model. Called once a model is loaded
        (`classify` answers a degraded daemon first); a reload only ever swaps in another model."""
        for _ in range(MODEL_SWAP_RETRIES):
            with self._model_lock:
                backend, batcher = self.backend, self.batcher
            try:
                return (
                    backend,
                    batcher,
                    batcher.predict(backend.tokenize([model_input(text, backend.preprocessing)])[0]),
                )
            except BatcherClosed:
                continue
        raise Busy("the model is being replaced; retry in a second", retry_after_s=1)

    @contextlib.contextmanager
    def _explain_turn(self):
        if not self._explain_slots.acquire(timeout=EXPLAIN_WAIT_S):
            raise Busy(f"{MAX_CONCURRENT_EXPLAINS} explanations are running already; retry in a few seconds")
        try:
            yield
        finally:
            self._explain_slots.release()

    @staticmethod
    def _explain(backend, batcher: MicroBatcher, text: str) -> list[tuple[str, float]]:
        from device.explain import driving_terms

        return driving_terms(
            backend,
            text,
            top_k=5,
            predict=lambda texts: batcher.predict_many(
                backend.tokenize([model_input(t, backend.preprocessing) for t in texts])
            ),
        )

    def _store(self, result: Classification, backend, source: str) -> None:
        result.uuid = result.uuid or str(uuid_module.uuid4())
        if self.store is None:
            result.store_error = self.store_error
            return
        try:
            self.store.insert_prediction(
                result.prediction, result.text, source, backend.model_name, uuid=result.uuid, input_notes=result.notes
            )
            result.stored = True
        except StoreWriteError as exc:
            # Full disk, read-only file...: the user still gets the answer, flagged as not stored.
            result.store_error = str(exc)
            log.error("prediction.not_stored", extra={"fields": {"uuid": result.uuid, "error": str(exc)}})

    # --- reporting ---------------------------------------------------------------------------
    def uptime_s(self) -> float:
        return time.time() - self.started_at

    def model_info(self) -> dict:
        if self.backend is None:
            return {"loaded": False, "bundle": str(self.bundle_dir), "error": self.model_error, "fix": self.model_fix}
        manifest = self.backend.manifest
        return {
            "loaded": True,
            "bundle": str(self.bundle_dir),
            "name": manifest.get("name"),
            "version": self.backend.model_version,
            "backend": self.backend.type_key,
            "accelerator_unavailable": self.backend.fallback_reason,
            "created_at": manifest.get("created_at"),
            "max_length": manifest.get("max_length"),
        }

    def database_info(self) -> dict:
        if self.store is None:
            return {"ok": False, "path": str(self.config.store.path), "error": self.store_error}
        try:
            return {"ok": True, **self.store.stats()}
        except Exception as exc:  # a broken DB must show on /healthz, not crash it
            return {"ok": False, "path": str(self.store.path), "error": str(exc)}

    def health(self) -> tuple[dict, bool]:
        model, database = self.model_info(), self.database_info()
        healthy = model["loaded"]
        sync = self._sync_health()
        body = {
            "status": "ok" if healthy and database["ok"] and sync.get("ok", True) else "degraded",
            "model": {k: model.get(k) for k in ("loaded", "version", "bundle", "error", "fix")},
            "database": {
                k: database.get(k) for k in ("ok", "path", "rows", "unsynced", "schema_version", "size_bytes", "error")
            },
            "uptime_s": round(self.uptime_s(), 1),
        }
        if sync:
            body["sync"] = sync
        return body, healthy

    def _sync_health(self) -> dict:
        """The in-process sync agent's liveness and last upload error ({} when sync is off)."""
        if not self.config.sync.enabled:
            return {}
        try:
            state = self.status_providers["sync"]()
        except Exception as exc:
            return {"ok": False, "error": str(exc)}
        upload = state.get("upload") or {}
        ota = state.get("ota") or {}
        alive = bool(state.get("running")) and upload.get("alive", state.get("running"))
        return {
            "ok": bool(alive) and not upload.get("failing") and not ota.get("alarm"),
            "running": bool(state.get("running")),
            "broker_connected": bool(state.get("broker_connected")),
            "upload_alive": bool(alive),
            "upload_failing": bool(upload.get("failing")),
            "last_error": upload.get("last_error"),
            "last_error_at": upload.get("last_error_at"),
            "ota_alarm": ota.get("alarm"),
        }

    def status(self) -> dict:
        sections = {}
        for name, provider in self.status_providers.items():
            try:
                sections[name] = provider()
            except Exception as exc:
                sections[name] = {"error": str(exc)}
        return {
            "model": self.model_info(),
            "manifest": self.backend.manifest if self.backend is not None else None,
            "database": self.database_info(),
            "uptime_s": round(self.uptime_s(), 1),
            "started_at": self.started_at,
            "pid": os.getpid(),
            "advice_source": self.demand.source,
            "config": self.config.to_dict(),
            **sections,
        }

    def _sync_state(self) -> dict:
        """Placeholder until the sync agent registers itself; reads its state file when present."""
        try:
            from device.sync.status import state
        except ImportError:
            return {"enabled": self.config.sync.enabled, "running": False, "state": "sync not installed"}
        return {"enabled": self.config.sync.enabled, **state(self.config, self.store)}
