"""`careeredge firstboot`: the boot partition's careeredge.toml becomes the device's config, or one clear
line and nothing changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from device.config import load_config
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "firmware_image" / "boot" / "careeredge.toml.example"
BIN = Path(sys.executable).parent


def boot_partition(tmp_path: Path, text: str | None = None) -> Path:
    """A boot partition with the example file (or `text`) and the files it names."""
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "careeredge.toml").write_text(text if text is not None else EXAMPLE.read_text())
    (boot / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    from shared.signing import generate_keypair

    generate_keypair(tmp_path / "signing.pem", boot / "model-signing.pub.pem")
    return boot


def firstboot(boot: Path, etc: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "careeredge"), "firstboot", "--from", str(boot / "careeredge.toml"), "--etc", str(etc)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_applies_to_a_config_the_daemon_loads(tmp_path):
    boot, etc = boot_partition(tmp_path), tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text('[model]\nbundle = "/opt/careeredge/models/model_a_v1"\n')
    result = firstboot(boot, etc)
    assert result.returncode == 0, result.stderr
    config = load_config(etc / "config.toml", env={})
    assert config.sync.enabled and config.sync.device_id == "pi-kitchen"
    assert (config.sync.broker_host, config.sync.broker_port) == ("broker.example.lan", 8883)
    assert config.sync.tls_ca == etc / "ca.pem" and (etc / "ca.pem").is_file()
    assert config.sync.public_key == etc / "model-signing.pub.pem"
    assert str(config.model.bundle) == "/opt/careeredge/models/model_a_v1"  # install.sh's choice kept
    assert config.model.backend == "auto"
    # applied once: the file (which may hold a password) no longer sits on the boot partition as is
    assert not (boot / "careeredge.toml").exists() and (boot / "careeredge.toml.applied").is_file()
    again = firstboot(boot, etc)
    assert again.returncode == 0 and "nothing to apply" in again.stdout
    assert (etc / "config.toml").stat().st_mode & 0o777 == 0o640


def test_a_missing_key_is_one_line_and_nothing_changes(tmp_path):
    text = EXAMPLE.read_text().replace('public_key = "model-signing.pub.pem"', "")
    boot, etc = boot_partition(tmp_path, text), tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text("[web]\nport = 8321\n")
    result = firstboot(boot, etc)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "missing required key [ota] public_key" in result.stderr and "Traceback" not in result.stderr
    assert (etc / "config.toml").read_text() == "[web]\nport = 8321\n"
    assert (boot / "careeredge.toml").is_file()  # kept for the owner to fix


def test_a_named_file_that_is_not_there_is_reported(tmp_path):
    boot, etc = boot_partition(tmp_path), tmp_path / "etc"
    (boot / "ca.pem").unlink()
    result = firstboot(boot, etc)
    assert result.returncode == 2 and "[tls] ca names" in result.stderr and "does not exist" in result.stderr
    assert not (etc / "config.toml").exists()


def test_a_bad_port_and_half_a_client_certificate_are_refused(tmp_path):
    for old, new, message in (
        ("port = 8883", 'port = "8883"', "[broker] port must be an integer"),
        ('# cert = "device.pem"', 'cert = "device.pem"', "[tls] cert and key: set both or neither"),
    ):
        case = tmp_path / message.split()[0].strip("[]")
        case.mkdir()
        boot = boot_partition(case, EXAMPLE.read_text().replace(old, new))
        result = firstboot(boot, case / "etc")
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_the_unit_runs_it_before_the_daemon():
    unit = (REPO_ROOT / "systemd" / "careeredge-firstboot.service").read_text()
    assert "ConditionPathExists=/boot/firmware/careeredge.toml" in unit and "Before=careeredge.service" in unit
    assert "careeredge firstboot --from /boot/firmware/careeredge.toml" in unit
