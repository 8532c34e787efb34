"""The units verify and stay hardened; the daemon speaks sd_notify on a real notify socket and its
watchdog pings stop when the inference worker hangs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from device.config import EMBEDDED_BUNDLE, load_config
from tests.conftest import REPO_ROOT, require

UNITS = REPO_ROOT / "systemd"
BIN = Path(sys.executable).parent
DAEMON_UNIT = UNITS / "careeredge.service"


def _install_paths(text: str) -> str:
    """Point a unit's install paths at this checkout so `verify` can check that the executables exist."""
    return text.replace("/opt/careeredge/.venv/bin/", f"{BIN}/").replace("/opt/careeredge", str(REPO_ROOT))


def test_every_unit_verifies(tmp_path):
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
    require((BIN / "careeredge").is_file(), "careeredge console script in the venv")
    units = sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))
    assert {"careeredge.service", "careeredge-firstboot.service"} <= {u.name for u in units}
    copies = []
    for unit in units:
        name = unit.name.replace("@.", "@1.")  # a template verifies as one of its instances
        (tmp_path / name).write_text(_install_paths(unit.read_text()))
        copies.append(str(tmp_path / name))
    result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "careeredge" in line]
    assert not problems, "\n".join(problems)


def test_daemon_unit_scores_at_most_3_in_systemd_analyze_security(tmp_path):
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(DAEMON_UNIT)], capture_output=True, text=True
    )
    score = re.search(r"Overall exposure level for careeredge\.service: ([0-9.]+)", result.stdout + result.stderr)
    assert score, result.stdout + result.stderr
    assert float(score.group(1)) <= 3.0, result.stdout


def test_daemon_unit_is_notify_with_a_watchdog_and_a_writable_state_dir():
    text = DAEMON_UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "StateDirectory=careeredge", "ProtectHome=true", "Restart=on-failure"):
        assert line in text


def test_without_a_store_path_systemds_state_directory_is_used(monkeypatch, tmp_path):
    """ProtectHome= hides ~/.local/share: under systemd the default store lives in $STATE_DIRECTORY."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    config = load_config(env={})
    assert config.store.path == tmp_path / "state" / "predictions.db"
    assert config.sync.models_dir == tmp_path / "state" / "models"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert "state" not in str(load_config(env={}).store.path)


class NotifySocket:
    """What systemd listens on: a datagram socket whose path goes to the service in $NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)

    def messages_until(self, wanted: str, timeout: float) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            if wanted in seen[-1].splitlines():
                return seen
        raise AssertionError(f"no {wanted} within {timeout}s; got {seen}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_serve_says_ready_then_feeds_the_watchdog_then_says_stopping(notify_socket, tmp_path):
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_socket.path),
        "WATCHDOG_USEC": "400000",  # pings every 0.2 s
        "CAREEREDGE_STORE_PATH": str(tmp_path / "predictions.db"),
        "CAREEREDGE_SYNC_MODELS_DIR": str(tmp_path / "models"),
    }
    process = subprocess.Popen(
        [str(BIN / "careeredge"), "serve", "--port", "0", "--model", str(EMBEDDED_BUNDLE)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = notify_socket.messages_until("READY=1", timeout=60)
        assert any(line.startswith("STATUS=serving on http://") for line in ready[-1].splitlines())
        pings = [notify_socket.messages_until("WATCHDOG=1", timeout=5) for _ in range(3)]
        assert len(pings) == 3
        process.send_signal(signal.SIGTERM)
        notify_socket.messages_until("STOPPING=1", timeout=20)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_hung_inference_worker_stops_the_pings(notify_socket, tmp_path):
    from device.daemon import Daemon
    from device.systemd_notify import SystemdNotifier, Watchdog

    config = load_config(env={})
    config.override("store", path=tmp_path / "predictions.db")
    daemon = Daemon(config, bundle_dir=EMBEDDED_BUNDLE)
    release = threading.Event()
    model_call = daemon.batcher.predict_batch

    def hanging_model(texts):  # the real model, stuck before it answers (a wedged driver, a deadlock)
        release.wait(30)
        return model_call(texts)

    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    watchdog = Watchdog(notifier, lambda: daemon.inference_alive(max_call_s=0.5), interval_s=0.1).start()
    try:
        notify_socket.messages_until("WATCHDOG=1", timeout=5)
        daemon.batcher.predict_batch = hanging_model
        request = threading.Thread(target=daemon.classify, args=("Data scientist: pandas, SQL", "api"))
        request.start()
        notify_socket.messages_until("STATUS=inference worker stalled; withholding watchdog pings", timeout=5)
        with pytest.raises(AssertionError, match="no WATCHDOG=1"):
            notify_socket.messages_until("WATCHDOG=1", timeout=1.0)  # systemd would now kill and restart
        release.set()
        request.join(timeout=30)
        notify_socket.messages_until("WATCHDOG=1", timeout=5)  # an answered call: alive again
    finally:
        release.set()
        watchdog.stop()
        daemon.close()


def test_outside_systemd_nothing_is_sent():
    from device.systemd_notify import SystemdNotifier

    assert SystemdNotifier({}).notify("READY=1") is False
    # $WATCHDOG_USEC meant for another process (a parent's) is not ours to feed
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert SystemdNotifier({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "2000000"}).watchdog_s == 2.0
