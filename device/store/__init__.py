"""SQLite prediction store (see prediction_store.py for the concurrency and durability model)."""

from device.store.prediction_store import (
    PRIVACY_MODES,
    SOURCES,
    IdConflict,
    PredictionStore,
    StoreError,
    StoreWriteError,
    utc_now,
)

__all__ = ["PredictionStore", "StoreError", "StoreWriteError", "IdConflict", "SOURCES", "PRIVACY_MODES", "utc_now"]
