"""`careeredge-cloud build-device-bundle`: one tarball that installs a careeredge device offline.

    careeredge-device-<version>-<machine>/
      install.sh            venv with --no-index, system user, units enabled, OTA key placed
      TARGET PYTHON MODEL   what the wheels and the model are for (install.sh checks them first)
      SHA256SUMS            every other file, checked by install.sh before it changes anything
      BUNDLE.json           versions, sizes, the source commit
      wheels/               the project wheel + the device extra for that platform, nothing else
      model/<name>/         the INT8 model bundle (manifest signed when a signing key is given)
      config/               the default config.toml and the first-boot example
      systemd/              careeredge.service, careeredge-firstboot.service
      keys/                 model-signing.pub.pem, the key OTA updates must verify against

It is built from a source checkout (the units and the installer live beside the code), for Raspberry
Pi OS Bookworm by default (aarch64, CPython 3.11); `--platform x86_64` builds the same bundle for a
PC, which is how the tests install it for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloud.appliance import wheelhouse
from shared.bundle import read_manifest, save_manifest, verify_bundle
from shared.errors import UserError
from shared.files import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
UNITS = ("careeredge.service", "careeredge-firstboot.service")
SIZE_BUDGET_MB = 150


@dataclass
class DeviceBundle:
    tarball: Path
    size_mb: float
    wheels: int
    model: str


def build_device_bundle(
    out_dir: Path,
    platform: wheelhouse.Platform,
    model_dir: Path,
    *,
    signing_key: Path | None = None,
    public_key: Path | None = None,
    cache_dir: Path | None = None,
    progress=lambda message: None,
) -> DeviceBundle:
    if not (REPO_ROOT / "pyproject.toml").is_file() or not (REPO_ROOT / "systemd").is_dir():
        raise UserError(f"build-device-bundle runs from a careeredge source checkout; {REPO_ROOT} is not one")
    manifest = verify_bundle(model_dir)
    version = _project_version()
    name = bundle_name(version, platform.machine)
    with tempfile.TemporaryDirectory(prefix="device-bundle-") as tmp:
        root = Path(tmp) / name
        wheels = root / "wheels"
        progress("building the project wheel")
        _build_project_wheel(wheels)
        progress(f"downloading the device extra for {platform.machine} / CPython {platform.python}")
        wheelhouse.download(wheelhouse.device_requirements(REPO_ROOT / "pyproject.toml"), wheels, platform, cache_dir)
        foreign = wheelhouse.foreign_wheels(wheels, platform)
        if foreign:
            raise UserError(f"wheels not built for {platform.machine}: {', '.join(foreign)}")
        wheelhouse.check_resolves_offline(wheels, [f"careeredge[device]=={version}"], platform)
        progress("adding the model, config, units and installer")
        model_name = str(manifest["name"])
        _copy_model(model_dir, root / "model" / model_name, signing_key)
        _copy_support_files(root, signing_key, public_key)
        (root / "TARGET").write_text(platform.machine + "\n")
        (root / "PYTHON").write_text(platform.python + "\n")
        (root / "MODEL").write_text(model_name + "\n")
        info = _bundle_info(root, version, platform, manifest)
        (root / "BUNDLE.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _write_checksums(root)
        out_dir.mkdir(parents=True, exist_ok=True)
        tarball = out_dir / f"{name}.tar.gz"
        progress(f"writing {tarball}")
        partial = tarball.with_suffix(".gz.partial")
        with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
            archive.add(root, arcname=name)
        partial.replace(tarball)
    size_mb = tarball.stat().st_size / 1e6
    if size_mb > SIZE_BUDGET_MB:
        raise UserError(f"{tarball} is {size_mb:.1f} MB, over the {SIZE_BUDGET_MB} MB budget")
    return DeviceBundle(tarball, size_mb, len(list(_members(tarball, "wheels/"))), model_name)


def bundle_name(version: str, machine: str) -> str:
    """The tarball's stem (and top directory): the Containerfile and the pi-gen stage look for it."""
    return f"careeredge-device-{version}-{machine}"


def _project_version() -> str:
    import tomllib

    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _build_project_wheel(dest: Path) -> None:
    """The project as a pure-Python wheel (the embedded model bundle inside), without build isolation:
    the build tools come from this environment, not from the index."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="careeredge-wheel-") as build_dir:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
            + ["--disable-pip-version-check", "--wheel-dir", str(dest), str(REPO_ROOT)],
            capture_output=True,
            text=True,
            env={**os.environ, "TMPDIR": build_dir},
        )
    if result.returncode != 0:
        raise UserError(f"building the careeredge wheel failed: {(result.stderr.strip().splitlines() or [''])[-1]}")


def _copy_model(model_dir: Path, dest: Path, signing_key: Path | None) -> None:
    shutil.copytree(model_dir, dest, ignore=shutil.ignore_patterns("*.tmp"))
    if signing_key is not None:
        from shared.signing import load_private_key, sign_manifest

        save_manifest(dest, sign_manifest(read_manifest(dest), load_private_key(signing_key)))
    verify_bundle(dest)


def _copy_support_files(root: Path, signing_key: Path | None, public_key: Path | None) -> None:
    shutil.copy2(HERE / "install.sh", root / "install.sh")
    (root / "install.sh").chmod(0o755)
    (root / "config").mkdir()
    shutil.copy2(HERE / "config.toml", root / "config" / "config.toml")
    shutil.copy2(REPO_ROOT / "firmware_image" / "boot" / "careeredge.toml.example", root / "config")
    (root / "systemd").mkdir()
    for unit in UNITS:
        shutil.copy2(REPO_ROOT / "systemd" / unit, root / "systemd" / unit)
    if signing_key is None and public_key is None:
        return
    (root / "keys").mkdir()
    target = root / "keys" / "model-signing.pub.pem"
    if public_key is not None:
        from shared.signing import load_public_key

        load_public_key(public_key)  # a readable ed25519 public key, or one clear line
        shutil.copy2(public_key, target)
        return
    from cryptography.hazmat.primitives import serialization

    from shared.signing import load_private_key

    pem = (
        load_private_key(signing_key)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    target.write_bytes(pem)


def _bundle_info(root: Path, version: str, platform: wheelhouse.Platform, manifest: dict) -> dict:
    wheels = sorted(p.name for p in (root / "wheels").glob("*.whl"))
    return {
        "careeredge": version,
        "machine": platform.machine,
        "python": platform.python,
        "platform_tags": list(platform.tags),
        "model": {"name": manifest["name"], "version": manifest["version"], "created_at": manifest["created_at"]},
        "wheels": wheels,
        "source_commit": _git_commit(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.strip() or None


def _write_checksums(root: Path) -> None:
    lines = [
        f"{sha256_file(path)}  {path.relative_to(root).as_posix()}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "SHA256SUMS"
    ]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def _members(tarball: Path, prefix: str):
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.split("/", 1)[-1].startswith(prefix):
                yield member.name
