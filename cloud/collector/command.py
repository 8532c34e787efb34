"""`careeredge-cloud collect`: run a collector until interrupted (or for --duration seconds)."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import click

from cloud.collector.collector import Collector
from cloud.collector.storage import SqliteStorage
from shared.mqtt.client import BrokerSettings


@click.command("collect")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("artifacts/collector/predictions.sqlite"),
    show_default=True,
    help="SQLite file the prediction logs and OTA reports go to.",
)
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", default=1883, show_default=True, type=int)
@click.option(
    "--group",
    default="collectors",
    show_default=True,
    help="Shared-subscription group: collectors in one group split the fleet's traffic.",
)
@click.option("--client-id", default=None, help="Persistent-session id (default: collector-<hostname>-<group>).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--username", envvar="CAREEREDGE_MQTT_USERNAME", default=None)
@click.option(
    "--password",
    envvar="CAREEREDGE_MQTT_PASSWORD",
    default=None,
    help="Better passed as CAREEREDGE_MQTT_PASSWORD than on the command line.",
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
    db_path,
    broker_host,
    broker_port,
    group,
    client_id,
    tls_ca,
    tls_cert,
    tls_key,
    username,
    password,
    stats_interval,
    duration,
    stats_json,
) -> None:
    """Collect prediction logs and OTA reports from the fleet (MQTT v5 shared subscription)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = BrokerSettings(
        host=broker_host,
        port=broker_port,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        username=username,
        password=password,
    )
    storage = SqliteStorage(db_path)
    collector = Collector(
        storage, settings, group=group, client_id=client_id or f"collector-{socket.gethostname()}-{group}"
    )
    stop = threading.Event()
    previous_handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    log = logging.getLogger("careeredge.collector")
    log.info("collecting from %s into %s (group %s)", settings.address, db_path, group)
    collector.start()
    started = last_stats = time.monotonic()
    try:
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
