"""`careeredge serve`: the appliance's composition root.

It builds the pieces and wires them together: the `Daemon` service (model + store), pruning, the
in-process sync agent when `[sync] enabled = true`, and the Flask app over that daemon; then runs it
under waitress with structured logs until SIGTERM/SIGINT, and drains in-flight requests on the way out.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from device.config import Config
    from device.daemon import Daemon

log = logging.getLogger(__name__)

WAITRESS_THREADS = 8  # request threads; inference goes through the MicroBatcher's few workers
# Slow or stalled clients (slowloris): waitress' defaults (100 connections, idle ones kept 120 s)
# let 101 half-sent requests lock everyone out. Open connections cost a descriptor and a few KB
# each, so accept many, and drop one that sends nothing for CHANNEL_TIMEOUT_S (a phone on a weak
# LAN link still uploads a 256 KiB body well within it). poll() instead of select(): select()
# cannot watch descriptors above 1023.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT_S = 15
CLEANUP_INTERVAL_S = 5
# A model call running this long counts as hung (watchdog pings stop) even under a short WatchdogSec:
# a batch of 4 long postings on a busy Pi takes well under a second.
MIN_STALL_S = 10.0


@click.command("serve")
@click.option("--host", default=None, help="Bind address [config [web] host, default 127.0.0.1; 0.0.0.0 = LAN].")
@click.option("--port", type=int, default=None, help="Port [config [web] port, default 8321; 0 = any free port].")
@click.option(
    "--model",
    "bundle",
    type=click.Path(path_type=Path),
    default=None,
    help="Model bundle directory (pins it: over-the-air slots are ignored).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Prediction database [config [store] path].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config TOML [default: $CAREEREDGE_CONFIG or ~/.config/careeredge/config.toml].",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def serve(
    host: str | None,
    port: int | None,
    bundle: Path | None,
    db_path: Path | None,
    config_path: Path | None,
    log_level: str,
) -> None:
    """Serve the classify page, history, status and /api/v1 on the LAN, recording every prediction.

    Logs are JSON lines on stderr. The URL is printed on stdout once the daemon listens.
    """
    from device import structured_log
    from device.config import load_config

    config = load_config(config_path)
    config.override("web", host=host, port=port)
    config.override("model", bundle=bundle)
    config.override("store", path=db_path)
    structured_log.configure(log_level.upper())

    def announce(url: str) -> None:
        click.echo(f"careeredge is serving on {url}  (Ctrl+C or SIGTERM to stop)", err=False)

    run_server(config, pinned_bundle=bundle is not None, ready=announce)


def start_sync_agent(daemon: Daemon) -> None:
    """`[sync] enabled = true`: run the MQTT sync agent in this process, sharing the daemon's store."""
    from device.sync.agent import SyncAgent, SyncSettings

    agent = SyncAgent(
        SyncSettings.from_config(daemon.config),
        store_factory=lambda: daemon.store,
        on_model_activated=daemon.load_model,
    )
    if daemon.skew is not None:
        agent.skew_summary = daemon.skew.unsent_summary
    agent.start()
    daemon.add_status_provider("sync", lambda: {"enabled": True, **agent.state()})
    daemon.on_shutdown(agent.stop)


def run_server(config: Config, pinned_bundle: bool = False, ready: Callable[[str], None] | None = None) -> None:
    """Run the daemon under waitress until SIGTERM/SIGINT. `ready(url)` is called once listening."""
    from waitress import create_server

    from device.daemon import Daemon
    from device.heap import limit_arenas
    from device.sync.slots import resolve_bundle
    from device.web import create_app

    limit_arenas()  # before the model, the sync agent and waitress start their threads
    daemon = Daemon(config, bundle_dir=resolve_bundle(config, pinned=pinned_bundle))
    daemon.start_retention()
    daemon.start_skew_monitor()
    if config.sync.enabled:
        try:
            start_sync_agent(daemon)
        except Exception as exc:  # sync is optional; the appliance still classifies without it
            log.error("sync.start_failed", extra={"fields": {"error": str(exc)}})
    app = create_app(daemon)
    # Flask answers bodies over [web] max_request_bytes with a JSON 413. Waitress' own cap sits well
    # above it so Flask sees those requests; only absurd bodies are cut at the socket (plain 413).
    _allow_descriptors(CONNECTION_LIMIT + 256)
    server = create_server(
        app,
        host=config.web.host,
        port=config.web.port,
        threads=WAITRESS_THREADS,
        max_request_body_size=4 * config.web.max_request_bytes + (1 << 20),
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=CHANNEL_TIMEOUT_S,
        cleanup_interval=CLEANUP_INTERVAL_S,
        asyncore_use_poll=True,
        ident="careeredge",
    )
    url = f"http://{server.effective_host}:{server.effective_port}/"

    def request_shutdown(signum, _frame):
        log.info("shutdown.requested", extra={"fields": {"signal": signal.Signals(signum).name}})
        raise SystemExit(0)  # waitress' run() catches it and drains its worker threads

    signal.signal(signal.SIGTERM, request_shutdown)
    signal.signal(signal.SIGINT, request_shutdown)
    log.info(
        "daemon.listening",
        extra={
            "fields": {
                "url": url,
                "degraded": daemon.degraded,
                "model": daemon.model_info().get("version"),
                "db": str(config.store.path),
                "startup_s": round(time.time() - daemon.started_at, 3),
            }
        },
    )
    if ready is not None:
        ready(url)
    watchdog = notify_systemd_ready(daemon, url)
    try:
        server.run()
    finally:
        watchdog.notifier.notify("STOPPING=1")
        watchdog.stop()
        _flush_responses(server)
        server.close()
        daemon.close()
        log.info("daemon.stopped", extra={"fields": {"uptime_s": round(daemon.uptime_s(), 1)}})


def _allow_descriptors(wanted: int) -> None:
    """Raise the soft open-files limit towards `wanted` (within the hard limit; systemd's soft default
    is 1024), so the connection limit is reached before the descriptor limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("web.descriptor_limit", extra={"fields": {"soft": soft, "wanted": target, "error": str(exc)}})


def notify_systemd_ready(daemon: Daemon, url: str):
    """Under systemd (`Type=notify`): READY=1 now that the socket listens, then watchdog pings for as
    long as the inference workers are alive (no model call stuck for longer than half `WatchdogSec`)."""
    from device.systemd_notify import SystemdNotifier, Watchdog

    notifier = SystemdNotifier()
    state = "degraded: " + (daemon.model_error or "no model") if daemon.degraded else "serving"
    notifier.notify("READY=1", f"STATUS={state} on {url}", f"MAINPID={os.getpid()}")
    max_call_s = max((notifier.watchdog_s or 0) / 2, MIN_STALL_S)
    return Watchdog(notifier, lambda: daemon.inference_alive(max_call_s)).start()


def _flush_responses(server, seconds: float = 1.0) -> None:
    """Give finished requests a moment to write their responses before the sockets close."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(getattr(ch, "total_outbufs_len", 0) for ch in server._map.values()):
        server.asyncore.loop(timeout=0.05, map=server._map, count=1)
