"""A wheelhouse for another machine: the device extra's wheels for one platform, and the checks that
it is complete and holds nothing built for another architecture.

`pip download --platform ... --only-binary=:all:` resolves for the target (Raspberry Pi OS Bookworm:
aarch64, glibc 2.36, CPython 3.11) from any host. Wheels cached in `cache_dir` are reused, so only
new or changed pins reach the network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from shared.errors import UserError

DEVICE_EXTRA = "device"


@dataclass(frozen=True)
class Platform:
    """What the wheels must run on. `machine` is `uname -m` there; `tags` are pip's --platform values."""

    machine: str
    tags: tuple[str, ...]
    python: str = "3.11"

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


# Bookworm's glibc is 2.36: manylinux up to 2_28 is safe (2_34+ wheels are rare and also fine).
PLATFORMS = {
    "aarch64": Platform("aarch64", ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64")),
    "x86_64": Platform("x86_64", ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")),
}


def device_requirements(pyproject: Path) -> list[str]:
    """The core dependencies plus the device extra, as declared in pyproject.toml."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"][DEVICE_EXTRA])


def download(requirements: list[str], dest: Path, platform: Platform, cache_dir: Path | None = None) -> None:
    """`pip download` the requirements (and their dependencies) as binary wheels for `platform`.

    With a `cache_dir` that already resolves everything, nothing is fetched (`--no-index`); otherwise
    pip asks the index, and the cache is refreshed with what it brought."""
    dest.mkdir(parents=True, exist_ok=True)
    base = _pip_download(platform, dest)
    if cache_dir is not None and cache_dir.is_dir():
        offline = subprocess.run(
            [*base, "--no-index", "--find-links", str(cache_dir), *requirements], capture_output=True
        )
        if offline.returncode == 0:
            return
    online = subprocess.run([*base, *requirements], capture_output=True, text=True)
    if online.returncode != 0:
        last = (online.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"pip download for {platform.machine} failed: {last}")
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for wheel in dest.glob("*.whl"):
            if not (cache_dir / wheel.name).exists():
                shutil.copy2(wheel, cache_dir / wheel.name)


def _pip_download(platform: Platform, dest: Path) -> list[str]:
    """`pip download` of binary wheels for `platform` (not this machine) into `dest`."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"]
    command += [f"--platform={tag}" for tag in platform.tags]
    command += [f"--python-version={platform.python}", "--implementation=cp", f"--abi={platform.abi}", "--abi=abi3"]
    return [*command, "--abi=none", "--dest", str(dest)]


def wheel_platforms(filename: str) -> list[str]:
    """The platform tags of a wheel file name (`name-ver[-build]-py-abi-plat1.plat2.whl`)."""
    if not filename.endswith(".whl") or filename.count("-") < 4:
        raise UserError(f"{filename}: not a wheel file name")
    return filename[: -len(".whl")].rsplit("-", 1)[1].split(".")


def foreign_wheels(wheelhouse: Path, platform: Platform) -> list[str]:
    """Wheels that cannot install on `platform`: neither pure Python nor built for its machine."""
    return sorted(
        wheel.name
        for wheel in wheelhouse.glob("*.whl")
        if not all(tag == "any" or tag.endswith("_" + platform.machine) for tag in wheel_platforms(wheel.name))
    )


def check_resolves_offline(wheelhouse: Path, requirements: list[str], platform: Platform) -> None:
    """The requirements resolve from the wheelhouse alone (no index) for `platform`: nothing is missing."""
    command = [*_pip_download(platform, wheelhouse / ".resolve-check"), "--no-index", "--find-links", str(wheelhouse)]
    result = subprocess.run([*command, *requirements], capture_output=True, text=True)
    for leftover in (wheelhouse / ".resolve-check").glob("*"):
        leftover.unlink()
    if (wheelhouse / ".resolve-check").is_dir():
        (wheelhouse / ".resolve-check").rmdir()
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"the wheelhouse does not resolve the device extra offline: {last}")
