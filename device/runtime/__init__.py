"""Inference backends for the device: one module per backend, a registry built from the subclasses.

    backend = load_backend("artifacts/bundles/model_a_v1", threads=2)
    backend.predict(["We need a data scientist fluent in pandas ..."])

`load_backend` verifies the bundle's sha256 list before any model byte reaches a runtime, and
raises `BundleError` (a `UserError`, naming the file) when the bundle is missing, corrupt or
tampered. Backend modules are imported here, but each imports its runtime (onnxruntime,
hailo_platform) only when constructed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from device.runtime import hailo_backend, onnx_backend  # noqa: F401  (registers the subclasses)
from device.runtime.base import DEFAULT_BATCH_SIZE, InferenceBackend, Prediction
from device.runtime.hailo_backend import HailoUnavailable
from shared.bundle import HAILO_FILE, BundleError, verify_bundle
from shared.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "onnxruntime"
# "auto": the Hailo accelerator when the bundle was exported for it and a device and HEF are here,
# else ONNX Runtime on the CPU.
AUTO = "auto"
CPU_BACKEND = "onnxruntime"

__all__ = ["BundleError", "InferenceBackend", "Prediction", "available_backends", "load_backend"]


def available_backends() -> dict[str, type[InferenceBackend]]:
    return {cls.type_key: cls for cls in InferenceBackend.__subclasses__()}


def load_backend(
    bundle_dir: str | Path,
    backend: str = DEFAULT_BACKEND,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    hef: Path | None = None,
) -> InferenceBackend:
    """The backend for `bundle_dir`. An accelerator that cannot run it here (see `HailoUnavailable`)
    never stops the device: the same bundle is served on the CPU, and `fallback_reason` says why."""
    backends = available_backends()
    if backend not in backends and backend != AUTO:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(sorted([*backends, AUTO]))}")
    if threads is not None and threads < 1:
        raise UserError(f"threads must be a positive integer, got {threads}")
    manifest = verify_bundle(bundle_dir, skip=(HAILO_FILE,))
    fallback_reason = None
    if backend == "hailo" or (backend == AUTO and _exported_for_hailo(manifest, hef)):
        try:
            return backends["hailo"](bundle_dir, manifest, threads=threads, batch_size=batch_size, hef=hef)
        except HailoUnavailable as exc:
            fallback_reason = exc.message  # the caller says it (the daemon's log, the CLI's stderr)
            log.info("hailo.unavailable", extra={"fields": {"reason": exc.message, "serving_on": CPU_BACKEND}})
    elif backend != AUTO:
        return backends[backend](bundle_dir, manifest, threads=threads, batch_size=batch_size)
    cpu = backends[CPU_BACKEND](bundle_dir, manifest, threads=threads, batch_size=batch_size)
    cpu.fallback_reason = fallback_reason
    return cpu


def _exported_for_hailo(manifest: dict, hef: Path | None) -> bool:
    """Worth trying the accelerator: the bundle has the host half and a HEF is at hand."""
    return "hailo" in manifest and (HAILO_FILE in manifest["files"] or hef is not None)
