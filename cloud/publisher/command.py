"""`careeredge-cloud publish BUNDLE --channel stable --key PRIVATE_KEY` and `careeredge-cloud keygen`."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import click

from cloud.publisher.packing import DEFAULT_CHUNK_SIZE, pack_bundle
from cloud.publisher.publisher import ChannelPublisher
from shared.errors import UserError
from shared.mqtt.client import BrokerSettings
from shared.mqtt.contract import ContractError, check_identifier
from shared.signing import generate_keypair, load_private_key


@click.command("publish")
@click.argument("bundle", type=click.Path(file_okay=False, path_type=Path))
@click.option("--channel", default="stable", show_default=True, help="Update channel devices subscribe to.")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="ed25519 private key (PEM) whose public half the devices pin.",
)
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", default=1883, show_default=True, type=int)
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--username", envvar="CAREEREDGE_MQTT_USERNAME", default=None)
@click.option("--password", envvar="CAREEREDGE_MQTT_PASSWORD", default=None)
@click.option("--chunk-size", default=DEFAULT_CHUNK_SIZE, show_default=True, type=int, help="Bytes per chunk.")
@click.option(
    "--sequence",
    default=None,
    type=int,
    help="Manifest sequence (default: the channel's current one + 1). Must only ever grow.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the packed tar here (default: a temporary file).",
)
def publish_command(
    bundle,
    channel,
    key_path,
    broker_host,
    broker_port,
    tls_ca,
    tls_cert,
    tls_key,
    username,
    password,
    chunk_size,
    sequence,
    out_path,
) -> None:
    """Pack BUNDLE, sign it and publish it (chunks + retained manifest) to a channel."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_identifier(channel, "channel")
    except ContractError as exc:
        raise UserError(exc.message) from None
    private_key = load_private_key(key_path)
    settings = BrokerSettings(
        host=broker_host,
        port=broker_port,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        username=username,
        password=password,
    )
    with tempfile.TemporaryDirectory(prefix="careeredge-publish-") as tmp:
        packed = pack_bundle(bundle, out_path or Path(tmp) / "bundle.tar", private_key, chunk_size)
        with ChannelPublisher(settings, channel) as publisher:
            manifest = publisher.publish(packed, private_key, sequence=sequence)
    click.echo(
        json.dumps(
            {k: manifest[k] for k in ("channel", "sequence", "name", "version", "size", "sha256", "key_id")}, indent=2
        )
    )


@click.command("keygen")
@click.option("--private", "private_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--public", "public_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen_command(private_path, public_path, force) -> None:
    """Create the ed25519 key pair that signs OTA bundles (devices pin the public key)."""
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise UserError(f"{path} exists; pass --force to overwrite it")
    click.echo(f"key id {generate_keypair(private_path, public_path)}")
