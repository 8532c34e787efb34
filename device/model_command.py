"""`careeredge model status` and `careeredge model rollback`: the model slots by hand."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _slots(config_path: Path | None):
    from device.config import load_config
    from device.sync.slots import ModelSlots

    config = load_config(config_path)
    return config, ModelSlots(Path(config.sync.models_dir))


_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Device config TOML."
)


@click.group("model")
def model() -> None:
    """Inspect or switch the installed model bundles (over-the-air slots)."""


@model.command("status")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Show the active and previous model and the last over-the-air event."""
    from device.sync.ota import STATE_FILE, StateUnreadable, parse_state

    config, slots = _slots(config_path)
    active, previous = slots.active(), slots.previous()
    state_path = slots.models_dir / STATE_FILE
    last_event, alarm = None, None
    try:
        last_event = parse_state(state_path).get("last_event")
    except FileNotFoundError:
        pass
    except StateUnreadable as exc:
        alarm = f"{state_path} is unreadable ({exc}): updates are refused; delete it to rebuild it from the slots"
    info = {
        "models_dir": str(slots.models_dir),
        "active": slots.describe(active),
        "previous": slots.describe(previous),
        "pending_swap": slots.pending(),
        "fallback_bundle": str(config.model.bundle),
        "last_ota_event": last_event,
        "ota_alarm": alarm,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    describe = lambda d: f"{d['name']} {d['version']} ({d['slot']})" if d else "none"  # noqa: E731
    click.echo(f"active:   {describe(info['active'])}")
    if info["active"] is None:
        click.echo(f"          (no over-the-air model yet: the daemon serves {config.model.bundle})")
    click.echo(f"previous: {describe(info['previous'])}")
    if info["pending_swap"]:
        click.echo(f"pending:  swap to {info['pending_swap'].get('slot')} not confirmed (undone at the next start)")
    if alarm:
        click.echo(f"ALARM:    {alarm}")
    if last_event:
        reason = f" ({last_event['reason']})" if last_event.get("reason") else ""
        click.echo(f"last OTA: {last_event['event']} {last_event.get('version') or ''}{reason} at {last_event['at']}")


@model.command("rollback")
@_config_option
def rollback(config_path: Path | None) -> None:
    """Switch back to the previous model (run it again to switch forward)."""
    config, slots = _slots(config_path)
    slots.rollback()
    active = slots.describe(slots.active())
    click.echo(f"active model is now {active['name']} {active['version']} ({active['slot']})")
    click.echo(_tell_running_daemon(config, slots.active()))


def _tell_running_daemon(config, bundle: Path) -> str:
    """Ask a running `careeredge serve` to load the switched bundle (admin API, token-protected)."""
    import urllib.error
    import urllib.request

    if not config.admin.token:
        return "no [admin] token configured: restart the daemon to serve it"
    host = "127.0.0.1" if config.web.host in ("0.0.0.0", "::", "") else config.web.host
    request = urllib.request.Request(
        f"http://{host}:{config.web.port}/api/v1/admin/reload-model",
        method="POST",
        data=json.dumps({"bundle": str(bundle)}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {config.admin.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            served = json.loads(response.read()).get("model", {})
        return f"the running daemon now serves {served.get('version')}"
    except urllib.error.HTTPError as exc:
        return f"the running daemon refused to reload ({exc.code}): restart it to serve the switched model"
    except (urllib.error.URLError, OSError):
        return "no daemon answered on the configured port; it will serve this model when it starts"
