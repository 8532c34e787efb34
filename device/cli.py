"""`careeredge`: the device command line. Sub-commands load lazily (see shared.lazy_cli)."""

from __future__ import annotations

import click

from shared.lazy_cli import LazyGroup

COMMANDS = {
    "predict": "device.predict_command:predict",
    "serve": "device.serve_command:serve",
    "tui": "device.tui.app:tui",
    "sync": "device.sync.command:sync",
    "model": "device.model_command:model",
    "firstboot": "device.firstboot:firstboot",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="careeredge")
def main() -> None:
    """careeredge on the device: offline job-posting classification and career advice."""


if __name__ == "__main__":
    main()
