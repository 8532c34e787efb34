"""`careeredge-cloud collect`: run a collector until interrupted (or for --duration seconds).

The store is a URL (`--store`, or CAREEREDGE_COLLECTOR_STORE so a password stays out of the
process list): a SQLite path by default, `postgresql://...` for a fleet. The collector opens it
before subscribing, waiting out an unreachable server with backoff (one log line, not one per
attempt); a schema newer than this software exits 2 with one line.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import click

from cloud.broker_options import broker_options
from cloud.collector.collector import Collector, RetryPolicy
from cloud.collector.storage import open_storage
from cloud.collector.storage_api import CollectorStorage, StorageUnavailable
from shared.mqtt.client import BrokerSettings

log = logging.getLogger("careeredge.collector")

DEFAULT_SQLITE = Path("artifacts/collector/predictions.sqlite")


def _open_with_retry(storage: CollectorStorage, retry: RetryPolicy, stop: threading.Event) -> bool:
    """Open the store, waiting out an outage as a write would. False: gave up, or asked to stop."""
    started = time.monotonic()
    delays = retry.delays()
    failing = False
    while True:
        try:
            storage.open()
        except StorageUnavailable as exc:
            if not failing:
                log.warning("storage unavailable (%s); retrying with backoff", exc)
                failing = True
            waited = time.monotonic() - started
            if waited >= retry.give_up_after_s:
                log.error("storage still unavailable after %.0fs; giving up", waited)
                return False
            if stop.wait(next(delays)):
                return False
            continue
        if failing:
            log.warning("storage %s is available after %.1fs", storage.description, time.monotonic() - started)
        return True


@click.command("collect")
@click.option(
    "--store",
    "store_url",
    envvar="CAREEREDGE_COLLECTOR_STORE",
    default=None,
    help="Where prediction logs and OTA reports go: a SQLite path or sqlite:///path, or postgresql://user@host/db "
    "(default: artifacts/collector/predictions.sqlite). Env: CAREEREDGE_COLLECTOR_STORE.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file (the same as --store PATH).",
)
@broker_options
@click.option(
    "--group",
    default="collectors",
    show_default=True,
    help="Shared-subscription group: collectors in one group split the fleet's traffic.",
)
@click.option("--client-id", default=None, help="Persistent-session id (default: collector-<hostname>-<group>).")
@click.option(
    "--store-retry-for",
    default=600.0,
    show_default=True,
    help="Seconds a store outage is waited out (backoff up to 30 s) before the collector exits 1 without "
    "acknowledging; the broker redelivers to the next run.",
)
@click.option("--stats-interval", default=30.0, show_default=True, help="Seconds between stats log lines.")
@click.option("--duration", default=0.0, help="Stop after this many seconds (0: run until SIGINT/SIGTERM).")
@click.option(
    "--stats-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the final counters here as JSON when stopping.",
)
def collect_command(
    store_url,
    db_path,
    broker: BrokerSettings,
    group,
    client_id,
    store_retry_for,
    stats_interval,
    duration,
    stats_json,
) -> None:
    """Collect prediction logs and OTA reports from the fleet (MQTT v5 shared subscription)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if store_url and db_path:
        raise click.UsageError("give either --store or --db, not both")
    client_id = client_id or f"collector-{socket.gethostname()}-{group}"
    storage = open_storage(store_url or str(db_path or DEFAULT_SQLITE), collector=client_id)
    retry = RetryPolicy(give_up_after_s=store_retry_for)
    collector = Collector(storage, broker, group=group, client_id=client_id, retry=retry)
    stop = threading.Event()
    previous_handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not _open_with_retry(storage, retry, stop):
            raise SystemExit(0 if stop.is_set() else 1)
        log.info(
            "collecting from %s into %s (group %s, client %s)", broker.address, storage.description, group, client_id
        )
        collector.start()
        started = last_stats = time.monotonic()
        while not stop.is_set() and not collector.storage_failed.is_set():
            stop.wait(0.2)
            now = time.monotonic()
            if duration and now - started >= duration:
                break
            if now - last_stats >= stats_interval:
                log.info("stats %s", json.dumps(collector.snapshot()))
                last_stats = now
    finally:
        collector.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        snapshot = collector.snapshot()
        log.info("final stats %s", json.dumps(snapshot))
        if stats_json:
            stats_json.parent.mkdir(parents=True, exist_ok=True)
            stats_json.write_text(json.dumps(snapshot, indent=2) + "\n")
        storage.close()
    if collector.storage_failed.is_set():
        raise SystemExit(1)
