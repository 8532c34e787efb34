"""Sync state for the status page: from the in-process agent, else from the agent's state file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from device.sync.slots import ModelSlots

STALE_AFTER_S = 10.0  # the agent rewrites its state file every ~2 s while it runs


def state(config: Any = None, store: Any = None) -> dict:
    """{"running", "broker_connected", "buffer_rows", "last_ack_at", "active_model_version", ...}.

    `config` is the device Config (for `[sync] models_dir`); `store` (optional) gives a live
    buffer count when the agent runs in another process.
    """
    from device.sync.agent import STATE_FILE, running_agent

    agent = running_agent()
    if agent is not None:
        return agent.state()
    if config is None:
        return {
            "running": False,
            "enabled": False,
            "broker_connected": False,
            "buffer_rows": None,
            "last_ack_at": None,
            "active_model_version": None,
        }
    models_dir = Path(config.sync.models_dir)
    snapshot: dict = {}
    path = models_dir / STATE_FILE
    try:
        snapshot = json.loads(path.read_text())
        fresh = time.time() - path.stat().st_mtime < STALE_AFTER_S
    except (OSError, ValueError):
        fresh = False
    active = ModelSlots(models_dir).describe(ModelSlots(models_dir).active())
    result = {
        **snapshot,
        "enabled": bool(config.sync.enabled),
        "running": fresh and snapshot.get("running", False),
        "broker_connected": fresh and bool(snapshot.get("broker_connected")),
        "last_ack_at": snapshot.get("last_ack_at"),
        "active_model_version": active["version"] if active else None,
    }
    if store is not None:
        result["buffer_rows"] = store.count_unsynced()
    else:
        result.setdefault("buffer_rows", None)
    return result
