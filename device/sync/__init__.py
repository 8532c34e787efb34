"""Device sync: prediction logs up, signed model bundles down, over MQTT (see shared/mqtt/CONTRACT.md).

`state(config)` is the hook the status page, the TUI and /healthz use: buffer size, last
acknowledgement, broker connection and the active model version, whether the agent runs inside
this process (`careeredge serve` with `[sync] enabled = true`) or beside it (`careeredge sync`).
"""

from __future__ import annotations

from device.sync.status import state  # noqa: F401
