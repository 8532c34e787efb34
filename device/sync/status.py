"""Sync state for the status page: from the in-process agent, else from the agent's state file.

Whether an agent in another process runs is not read from the file's age (the agent writes it only
on change): the agent holds an exclusive flock on `models_dir/.sync.lock` for as long as it runs, and
a reader that cannot take a shared lock on it knows it is held.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from device.sync.slots import ModelSlots


def agent_running(models_dir: Path) -> bool:
    """True while a sync agent (in any process) holds the device lock in `models_dir`."""
    from device.sync.agent import LOCK_FILE

    try:
        fd = os.open(Path(models_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken just now
    return False


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
    except (OSError, ValueError):
        pass
    fresh = agent_running(models_dir)
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
