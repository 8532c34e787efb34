"""`careeredge-cloud publish BUNDLE --channel stable --key PRIVATE_KEY` and `careeredge-cloud keygen`.

Key rotation (docs/reliability.md): `keygen --rotate-from OLD.pem` makes the new key pair and a rotation
record signed by the old key; `publish --key NEW.pem --rotation RECORD.json` ships the record inside
the manifest, so devices that trust only the old key learn the new one from the update itself.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import click

from cloud.broker_options import broker_options
from cloud.publisher.packing import DEFAULT_CHUNK_SIZE, pack_bundle
from cloud.publisher.publisher import ChannelPublisher
from shared.errors import UserError
from shared.files import atomic_write_json
from shared.mqtt.client import BrokerSettings
from shared.mqtt.contract import ContractError, check_identifier
from shared.signing import (
    Keyring,
    SignatureError,
    apply_rotations,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_from_raw,
    sign_rotation,
)


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
@broker_options
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
@click.option(
    "--rotation",
    "rotation_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rotation record (from `keygen --rotate-from`) leading to --key; repeat, oldest first, for a chain.",
)
def publish_command(
    bundle,
    channel,
    key_path,
    broker: BrokerSettings,
    chunk_size,
    sequence,
    out_path,
    rotation_paths,
) -> None:
    """Pack BUNDLE, sign it and publish it (chunks + retained manifest) to a channel."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_identifier(channel, "channel")
    except ContractError as exc:
        raise UserError(exc.message) from None
    private_key = load_private_key(key_path)
    rotations = load_rotation_chain(rotation_paths, private_key)
    with tempfile.TemporaryDirectory(prefix="careeredge-publish-") as tmp:
        packed = pack_bundle(bundle, out_path or Path(tmp) / "bundle.tar", private_key, chunk_size)
        with ChannelPublisher(broker, channel) as publisher:
            manifest = publisher.publish(packed, private_key, sequence=sequence, key_rotations=rotations)
    click.echo(
        json.dumps(
            {k: manifest[k] for k in ("channel", "sequence", "name", "version", "size", "sha256", "key_id")}, indent=2
        )
    )


def load_rotation_chain(paths, private_key) -> list[dict]:
    """The rotation records, checked to form a chain that ends at the key that signs this release."""
    if not paths:
        return []
    records = []
    for path in paths:
        try:
            records.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a rotation record ({exc})") from None
    try:
        first_signer = public_key_from_raw(records[0].get("old_key") if isinstance(records[0], dict) else None)
        reached = apply_rotations(Keyring([first_signer]), records)
    except SignatureError as exc:
        raise UserError(f"the rotation records do not verify: {exc}") from None
    if reached.get(key_id(private_key.public_key())) is None:
        raise UserError("the rotation records do not lead to --key (oldest first; the last one must introduce it)")
    return records


@click.command("keygen")
@click.option("--private", "private_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--public", "public_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@click.option(
    "--rotate-from",
    "old_private_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Current private key: also write a rotation record, signed by it, that makes the new key trusted.",
)
@click.option(
    "--rotation-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the rotation record goes [default: next to --public, <name>.rotation.json].",
)
@click.option("--retire-old", is_flag=True, help="Devices that apply the rotation stop trusting the old key.")
def keygen_command(private_path, public_path, force, old_private_path, rotation_out, retire_old) -> None:
    """Create the ed25519 key pair that signs OTA bundles (devices pin the public key), or rotate to one."""
    if retire_old and old_private_path is None:
        raise UserError("--retire-old needs --rotate-from")
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise UserError(f"{path} exists; pass --force to overwrite it")
    old_private = load_private_key(old_private_path) if old_private_path else None
    click.echo(f"key id {generate_keypair(private_path, public_path)}")
    if old_private is None:
        return
    record = sign_rotation(old_private, load_public_key(public_path), retire_old=retire_old)
    rotation_out = rotation_out or public_path.with_name(f"{public_path.stem}.rotation.json")
    atomic_write_json(rotation_out, record)
    click.echo(f"rotation {record['key_id']} -> {record['new_key_id']} written to {rotation_out}")
