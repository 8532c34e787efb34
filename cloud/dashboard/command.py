"""`careeredge-cloud dashboard`: serve the study's dashboard (waitress; Ctrl+C stops it)."""

from __future__ import annotations

from pathlib import Path

import click

from shared.errors import UserError


@click.command("dashboard")
@click.option(
    "--monitoring",
    "monitoring_json",
    type=click.Path(path_type=Path),
    default=Path("artifacts/reports/monitoring.json"),
    show_default=True,
    help="The report's monitoring JSON (careeredge-cloud report).",
)
@click.option("--store", "store_url", default=None, help="The collector's store, for the live prediction count.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8330, show_default=True)
@click.option("--omit-text", is_flag=True, help="Show no posting text (e.g. for a screenshot of unlicensed data).")
def dashboard_command(monitoring_json, store_url, host, port, omit_text) -> None:
    """Serve the dashboard: A vs B week by week, skew per feature, rising skills, hypotheses, field traffic."""
    from waitress import create_server

    from cloud.dashboard.app import create_app

    if not monitoring_json.is_file():
        click.echo(f"dashboard: {monitoring_json} does not exist yet; the pages say how to make it", err=True)
    try:
        server = create_server(create_app(monitoring_json, store_url, omit_text), host=host, port=port, threads=4)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"careeredge dashboard on http://{host}:{server.effective_port}/  (Ctrl+C to stop)", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
