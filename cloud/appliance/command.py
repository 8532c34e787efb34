"""`careeredge-cloud build-device-bundle`: the offline install tarball for a Raspberry Pi (or its x86 twin)."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_CACHE = Path("~/.cache/careeredge").expanduser()


@click.command("build-device-bundle")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Where the tarball goes.")
@click.option(
    "--platform",
    "machine",
    type=click.Choice(["aarch64", "x86_64"]),
    default="aarch64",
    show_default=True,
    help="The device's `uname -m` (Raspberry Pi 5: aarch64).",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="INT8 model bundle to ship [default: the Model A bundle embedded in the package].",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ed25519 private key (careeredge-cloud keygen): signs the model's manifest and ships its public half.",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ship this OTA public key instead (the model stays as it is).",
)
@click.option(
    "--wheelhouse-cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Reuse wheels downloaded before [default: ~/.cache/careeredge/wheelhouse-PLATFORM].",
)
def build_device_bundle_command(
    out_dir: Path,
    machine: str,
    model_dir: Path | None,
    signing_key: Path | None,
    public_key: Path | None,
    wheelhouse_cache: Path | None,
) -> None:
    """Build careeredge-device-VERSION-PLATFORM.tar.gz: wheels, model, config, units and install.sh."""
    from cloud.appliance.bundle import build_device_bundle
    from cloud.appliance.wheelhouse import PLATFORMS
    from device.config import EMBEDDED_BUNDLE
    from shared.errors import UserError

    if signing_key is not None and public_key is not None:
        raise UserError("give --signing-key or --public-key, not both")
    result = build_device_bundle(
        out_dir,
        PLATFORMS[machine],
        model_dir or EMBEDDED_BUNDLE,
        signing_key=signing_key,
        public_key=public_key,
        cache_dir=wheelhouse_cache or DEFAULT_CACHE / f"wheelhouse-{machine}",
        progress=lambda message: click.echo(f"build-device-bundle: {message}", err=True),
    )
    click.echo(f"{result.tarball}: {result.size_mb:.1f} MB, {result.wheels} wheels, model {result.model}")
