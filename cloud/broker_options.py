"""The MQTT connection flags of the cloud commands that talk to the broker (`collect`, `publish`), declared
once and handed to the command as one `broker: BrokerSettings`."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from shared.mqtt.client import BrokerSettings, refuse_plaintext_password

_BROKER_FLAGS = (
    click.option("--broker-host", default="127.0.0.1", show_default=True),
    click.option("--broker-port", default=1883, show_default=True, type=int),
    click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None),
    click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None),
    click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None),
    click.option("--username", envvar="CAREEREDGE_MQTT_USERNAME", default=None),
    click.option(
        "--password",
        envvar="CAREEREDGE_MQTT_PASSWORD",
        default=None,
        help="Better passed as CAREEREDGE_MQTT_PASSWORD than on the command line.",
    ),
    click.option(
        "--allow-plaintext-password", is_flag=True, help="Send --password without TLS (refused otherwise; insecure)."
    ),
)


def broker_options(command: Callable) -> Callable:
    """Add the MQTT connection flags to a command and hand them to it as one `broker: BrokerSettings`; a
    password without TLS is refused (exit 2) before the command starts. The client warns about plaintext
    when it connects (`shared.mqtt.client.make_client`)."""

    @functools.wraps(command)
    def with_broker(*args, broker_host, broker_port, **kwargs):
        flags = {name: kwargs.pop(name) for name in ("tls_ca", "tls_cert", "tls_key", "username", "password")}
        broker = BrokerSettings(
            host=broker_host,
            port=broker_port,
            allow_plaintext_password=kwargs.pop("allow_plaintext_password"),
            **flags,
        )
        refuse_plaintext_password(broker)  # before the command opens, packs or connects anything
        return command(*args, broker=broker, **kwargs)

    for flag in reversed(_BROKER_FLAGS):  # click lists options in the order their decorators are written
        with_broker = flag(with_broker)
    return with_broker
