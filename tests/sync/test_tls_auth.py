"""TLS (pinned CA + client certificate) and username/password against a locked-down mosquitto."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from device.store import PredictionStore
from device.sync.agent import SyncAgent, SyncSettings
from shared.mqtt.client import BrokerSettings
from tests.conftest import require
from tests.support.mosquitto import Mosquitto, mosquitto_binary
from tests.sync.conftest import fill_store
from tests.sync.fleet import wait_until


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _certificate(subject: str, signing_key, signer, folder: Path, stem: str, ca: bool = False, ip: str | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(signer or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    cert = builder.sign(signing_key or key, hashes.SHA256())
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, folder / f"{stem}.key")
    return key, cert


@pytest.fixture
def secure_broker(tmp_path):
    require(
        mosquitto_binary() is not None and shutil.which("mosquitto_passwd") is not None,
        "mosquitto and mosquitto_passwd (Debian package `mosquitto`)",
    )
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_key, ca_cert = _certificate("careeredge test CA", None, None, pki, "ca", ca=True)
    _certificate("127.0.0.1", ca_key, ca_cert.subject, pki, "server", ip="127.0.0.1")
    _certificate("pi-secure", ca_key, ca_cert.subject, pki, "device")
    passwords = pki / "passwd"
    passwords.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "pi-secure", "correct horse"], check=True)
    listener = (
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        f"require_certificate true\npassword_file {passwords}\n"
    )
    with Mosquitto(tmp_path / "broker", listener_options=listener, allow_anonymous=False) as broker:
        yield broker, pki


def _agent(broker, pki: Path, tmp_path: Path, password: str, client_cert: bool = True) -> SyncAgent:
    settings = SyncSettings(
        device_id="pi-secure",
        broker=BrokerSettings(
            host=broker.host,
            port=broker.port,
            tls_ca=str(pki / "ca.pem"),
            tls_cert=str(pki / "device.pem") if client_cert else None,
            tls_key=str(pki / "device.key") if client_cert else None,
            username="pi-secure",
            password=password,
            reconnect_min_s=1,
            reconnect_max_s=1,
        ),
        channel="stable",
        models_dir=tmp_path / "models",
        public_key=None,
        poll_interval_s=0.2,
    )
    return SyncAgent(
        settings, store_factory=lambda: PredictionStore(tmp_path / "device.db"), close_store=True, enable_ota=False
    )


def test_device_connects_with_pinned_ca_client_certificate_and_password(secure_broker, tmp_path):
    broker, pki = secure_broker
    fill_store(tmp_path / "device.db", 5)
    agent = _agent(broker, pki, tmp_path, "correct horse").start()
    try:
        assert agent.wait_connected(15), broker.log_tail()
        assert agent.state()["broker"].startswith("mqtts://")
        # No collector on this broker: the rows must stay buffered (PUBACK "no matching subscribers").
        time.sleep(1.0)
        assert agent.state()["buffer_rows"] == 5
    finally:
        agent.stop()


@pytest.mark.parametrize("password, client_cert", [("wrong", True), ("correct horse", False)])
def test_wrong_password_or_missing_client_certificate_is_refused(secure_broker, tmp_path, password, client_cert):
    broker, pki = secure_broker
    agent = _agent(broker, pki, tmp_path, password, client_cert=client_cert).start()
    try:
        assert not agent.wait_connected(3)
        wait_until(lambda: not agent.state()["broker_connected"], 1, "still disconnected")
    finally:
        agent.stop()


def test_a_password_is_never_sent_over_plaintext_unless_explicitly_allowed(caplog, repo_root):
    from shared.errors import UserError
    from shared.mqtt.client import make_client

    plaintext = BrokerSettings(host="broker.lan", port=1883, username="pi-1", password="secret")
    with pytest.raises(UserError, match="without TLS"):
        make_client("pi-1", plaintext)
    with caplog.at_level("WARNING", logger="careeredge.mqtt"):
        make_client("pi-1", BrokerSettings(**{**plaintext.__dict__, "allow_plaintext_password": True}))
        make_client("pi-1", BrokerSettings(host="broker.lan", port=1883))
        make_client("pi-1", BrokerSettings(host="127.0.0.1", port=1883))  # loopback: nothing on a wire
    warnings = [r.getMessage() for r in caplog.records if r.name == "careeredge.mqtt"]
    assert len(warnings) == 2 and all(w.startswith("INSECURE") for w in warnings)
    assert "password" in warnings[0] and "without TLS" in warnings[1]

    # The shipped retrain unit publishes over TLS (8883, a pinned CA), never to 1883 in clear.
    unit = (repo_root / "systemd" / "careeredge-retrain.service").read_text()
    publish = next(line for line in unit.splitlines() if "careeredge-cloud publish" in line)
    assert "--tls-ca" in publish and "8883" in publish and "1883" not in publish


def test_the_sync_command_refuses_a_plaintext_password_with_one_line(tmp_path, repo_root):
    config = tmp_path / "device.toml"
    config.write_text(
        '[sync]\nbroker_host = "broker.lan"\nusername = "pi-1"\npassword = "secret"\n'
        f'models_dir = "{tmp_path / "models"}"\n[store]\npath = "{tmp_path / "device.db"}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "device.cli", "sync", "--config", str(config), "--duration", "1"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "without TLS" in result.stderr and "Traceback" not in result.stderr


def test_the_collector_refuses_a_plaintext_password_before_opening_its_store(tmp_path):
    from click.testing import CliRunner

    from cloud.collector.command import collect_command

    result = CliRunner().invoke(
        collect_command,
        ["--db", str(tmp_path / "c.sqlite"), "--broker-host", "broker.lan", "--username", "c", "--password", "x"],
    )
    assert result.exit_code == 2 and "without TLS" in result.output and not (tmp_path / "c.sqlite").exists()


def test_publish_refuses_a_plaintext_password_before_packing(tmp_path, tiny_bundle):
    from click.testing import CliRunner

    from cloud.publisher.command import keygen_command, publish_command

    key = tmp_path / "signing.pem"
    keys = ["--private", str(key), "--public", str(tmp_path / "signing.pub")]
    assert CliRunner().invoke(keygen_command, keys).exit_code == 0
    packed = tmp_path / "bundle.tar"
    args = [str(tiny_bundle), "--key", str(key), "--out", str(packed), "--broker-host", "broker.lan"]
    result = CliRunner().invoke(publish_command, [*args, "--username", "ci", "--password", "x"])
    assert result.exit_code == 2 and "without TLS" in result.output and not packed.exists()
