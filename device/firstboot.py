"""`careeredge firstboot`: turn the boot partition's `careeredge.toml` into the device's config.

A flashed SD card is identical for every device; what makes one device itself (its id, the broker, TLS
material, the OTA public key) is written by its owner onto the FAT boot partition, readable from any
laptop. At boot `careeredge-firstboot.service` (root, before the daemon) runs this command: it checks
every required key, copies the files it names into /etc/careeredge, writes /etc/careeredge/config.toml
(validated by the daemon's own loader before it replaces the old one) and renames the boot file to
`careeredge.toml.applied`, so the secrets it held do not stay on a partition any card reader can read.

A missing key or file is one line naming it, exit 2, and nothing changed: the daemon keeps serving
offline on the CPU with the config it had.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click

from shared.errors import UserError
from shared.files import atomic_write_text

BOOT_FILE = Path("/boot/firmware/careeredge.toml")
ETC_DIR = Path("/etc/careeredge")
APPLIED_SUFFIX = ".applied"
# (section, key): what a device cannot sync without. TLS client certificates and a password are optional.
REQUIRED = (("device", "id"), ("broker", "host"), ("broker", "port"), ("tls", "ca"), ("ota", "public_key"))
FILE_KEYS = {("tls", "ca"): "ca.pem", ("tls", "cert"): "device.pem", ("tls", "key"): "device.key"}
FILE_KEYS[("ota", "public_key")] = "model-signing.pub.pem"


@dataclass
class FirstBootSettings:
    values: dict[tuple[str, str], object]
    files: dict[tuple[str, str], Path]  # source files on the boot partition

    def get(self, section: str, key: str, default=None):
        return self.values.get((section, key), default)


def read_first_boot(path: Path) -> FirstBootSettings:
    """Parse and check the boot-partition file. UserError (one line, naming the key) on any problem."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    values = {(s, k): v for s, table in document.items() if isinstance(table, dict) for k, v in table.items()}
    for section, key in REQUIRED:
        if values.get((section, key)) in (None, ""):
            raise UserError(f"{path}: missing required key [{section}] {key}")
    port = values[("broker", "port")]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UserError(f"{path}: [broker] port must be an integer between 1 and 65535, got {port!r}")
    if (("tls", "cert") in values) != (("tls", "key") in values):
        raise UserError(f"{path}: [tls] cert and key: set both or neither")
    files = {}
    for name in FILE_KEYS:
        if name in values:
            source = path.parent / str(values[name])
            if not source.is_file():
                raise UserError(f"{path}: [{name[0]}] {name[1]} names {source}, which does not exist")
            files[name] = source
    return FirstBootSettings(values, files)


def render_config(settings: FirstBootSettings, etc_dir: Path, keep_model: str | None) -> str:
    """The device config (device/config.example.toml documents each key) for these settings."""

    def quoted(value) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["# Written by `careeredge firstboot` from the boot partition's careeredge.toml.", "[model]"]
    if keep_model:
        lines.append(f"bundle = {quoted(keep_model)}")
    lines += [f"backend = {quoted(settings.get('model', 'backend', 'auto'))}", "", "[web]"]
    lines += [f"host = {quoted(settings.get('web', 'host', '0.0.0.0'))}", "", "[sync]", "enabled = true"]
    lines += [f"device_id = {quoted(settings.get('device', 'id'))}"]
    lines += [
        f"broker_host = {quoted(settings.get('broker', 'host'))}",
        f"broker_port = {settings.get('broker', 'port')}",
    ]
    lines += [f"channel = {quoted(settings.get('ota', 'channel', 'stable'))}"]
    for section, key in (("broker", "username"), ("broker", "password")):
        if settings.get(section, key):
            lines.append(f"{key} = {quoted(settings.get(section, key))}")
    config_key = {("tls", "ca"): "tls_ca", ("tls", "cert"): "tls_cert", ("tls", "key"): "tls_key"}
    config_key[("ota", "public_key")] = "public_key"
    for name in settings.files:
        lines.append(f"{config_key[name]} = {quoted(etc_dir / FILE_KEYS[name])}")
    return "\n".join(lines) + "\n"


def apply_first_boot(boot_file: Path, etc_dir: Path) -> Path:
    """Check, copy, write, validate, then mark the boot file applied. Returns the config path."""
    from device.config import load_config

    settings = read_first_boot(boot_file)
    config_path = etc_dir / "config.toml"
    keep_model = None
    if config_path.is_file():  # keep the bundle install.sh configured
        keep_model = str(load_config(config_path, env={}).model.bundle)
    etc_dir.mkdir(parents=True, exist_ok=True)
    text = render_config(settings, etc_dir, keep_model)
    candidate = etc_dir / "config.toml.firstboot"
    candidate.write_text(text, encoding="utf-8")
    try:
        load_config(candidate, env={})  # the daemon's own checks, before anything is replaced
    finally:
        candidate.unlink()
    for name, source in settings.files.items():
        target = etc_dir / FILE_KEYS[name]
        shutil.copyfile(source, target)
        os.chmod(target, 0o640)
    atomic_write_text(config_path, text)
    os.chmod(config_path, 0o640)
    _give_to_service_group(etc_dir, [config_path, *(etc_dir / FILE_KEYS[n] for n in settings.files)])
    boot_file.rename(boot_file.with_name(boot_file.name + APPLIED_SUFFIX))
    return config_path


def _give_to_service_group(etc_dir: Path, paths: list[Path]) -> None:
    """root:careeredge 0640 when run as root (the daemon reads, cannot rewrite); a no-op in tests."""
    if os.geteuid() != 0:
        return
    try:
        import grp

        gid = grp.getgrnam("careeredge").gr_gid
    except KeyError:
        return
    for path in [etc_dir, *paths]:
        os.chown(path, 0, gid)


@click.command("firstboot")
@click.option(
    "--from", "boot_file", type=click.Path(path_type=Path), default=BOOT_FILE, show_default=True, help="Boot file."
)
@click.option("--etc", "etc_dir", type=click.Path(path_type=Path), default=ETC_DIR, show_default=True)
def firstboot(boot_file: Path, etc_dir: Path) -> None:
    """Apply the boot partition's careeredge.toml (device id, broker, TLS, OTA key) to /etc/careeredge."""
    if not boot_file.exists():
        click.echo(f"firstboot: {boot_file} not found; nothing to apply")
        return
    config_path = apply_first_boot(boot_file, etc_dir)
    click.echo(f"firstboot: wrote {config_path}; {boot_file.name} renamed to {boot_file.name}{APPLIED_SUFFIX}")
