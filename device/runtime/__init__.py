"""Inference backends for the device: one module per backend, a registry built from the subclasses.

    backend = load_backend("artifacts/bundles/model_a_v1", threads=2)
    backend.predict(["We need a data scientist fluent in pandas ..."])

`load_backend` verifies the bundle's sha256 list before any model byte reaches a runtime, and
raises `BundleError` (a `UserError`, naming the file) when the bundle is missing, corrupt or
tampered. Backend modules are imported here, but each imports its runtime (onnxruntime,
hailo_platform) only when constructed.
"""

from __future__ import annotations

from pathlib import Path

from device.runtime import hailo_backend, onnx_backend  # noqa: F401  (registers the subclasses)
from device.runtime.base import DEFAULT_BATCH_SIZE, InferenceBackend, Prediction
from shared.bundle import BundleError, verify_bundle
from shared.errors import UserError

DEFAULT_BACKEND = "onnxruntime"

__all__ = ["BundleError", "InferenceBackend", "Prediction", "available_backends", "load_backend"]


def available_backends() -> dict[str, type[InferenceBackend]]:
    return {cls.type_key: cls for cls in InferenceBackend.__subclasses__()}


def load_backend(
    bundle_dir: str | Path,
    backend: str = DEFAULT_BACKEND,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> InferenceBackend:
    backends = available_backends()
    if backend not in backends:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(sorted(backends))}")
    if threads is not None and threads < 1:
        raise UserError(f"threads must be a positive integer, got {threads}")
    manifest = verify_bundle(bundle_dir)
    return backends[backend](bundle_dir, manifest, threads=threads, batch_size=batch_size)
