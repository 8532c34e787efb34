"""`careeredge serve`: run the daemon (web UI + JSON API) under waitress until SIGTERM."""

from __future__ import annotations

from pathlib import Path

import click


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
    from device import daemon, structured_log
    from device.config import load_config

    config = load_config(config_path)
    config.override("web", host=host, port=port)
    config.override("model", bundle=bundle)
    config.override("store", path=db_path)
    structured_log.configure(log_level.upper())

    def announce(url: str) -> None:
        click.echo(f"careeredge is serving on {url}  (Ctrl+C or SIGTERM to stop)", err=False)

    daemon.serve(config, pinned_bundle=bundle is not None, ready=announce)
