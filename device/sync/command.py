"""`careeredge sync`: run the sync agent in the foreground (beside `careeredge serve`).

Use either this command or `[sync] enabled = true` in the daemon, not both: one device is one
MQTT session, and the agent's lock file in `models_dir` refuses a second one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import click


@click.command("sync")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Device config TOML (default: $CAREEREDGE_CONFIG or ~/.config/careeredge/config.toml).",
)
@click.option("--duration", default=0.0, help="Stop after this many seconds (0: until SIGINT/SIGTERM).")
@click.option("--verbose", is_flag=True, help="Debug logging.")
def sync(config_path: Path | None, duration: float, verbose: bool) -> None:
    """Upload buffered predictions and install signed model updates over MQTT."""
    from device.config import load_config
    from device.store import PredictionStore
    from device.sync.agent import SyncAgent, SyncSettings

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(config_path)
    settings = SyncSettings.from_config(config)
    agent = SyncAgent(
        settings,
        store_factory=lambda: PredictionStore.from_config(config.store),
        close_store=True,
    )
    stop = threading.Event()
    previous_handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    logging.getLogger("careeredge.sync").info(
        "device %s syncing %s with %s (channel %s)",
        settings.device_id,
        config.store.path,
        settings.broker.address,
        settings.channel,
    )
    agent.start()
    started = time.monotonic()
    try:
        while not stop.wait(0.2):
            if duration and time.monotonic() - started >= duration:
                break
    finally:
        agent.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
