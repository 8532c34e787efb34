"""Fixtures for the daemon tests: one tiny real INT8 bundle per session, configs pointing at
temporary files, and a real `careeredge serve` subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from device.config import Config, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"serving on (http://\S+)")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    from tests.support.tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny_model_v1")


def make_config(tmp_path: Path, bundle: Path | None, **store) -> Config:
    """A config that touches nothing outside tmp_path (no ~/.config, no ~/.local)."""
    config = load_config(env={})
    config.override("model", bundle=bundle or tmp_path / "no-such-bundle")
    config.override("store", path=tmp_path / "predictions.db", **store)
    config.override("profile", trends_file=tmp_path / "no-trends.json")
    config.override("sync", models_dir=tmp_path / "models")
    return config


def app_and_daemon_for(tmp_path: Path, bundle: Path, admin_token: str | None = None, **web):
    """A Flask app over a real Daemon (tiny model, SQLite file in tmp_path); close the daemon afterwards."""
    from device.daemon import Daemon
    from device.web import create_app

    config = make_config(tmp_path, bundle)
    if admin_token:
        config.override("admin", token=admin_token)
    if web:
        config.override("web", **web)
    daemon = Daemon(config, bundle_dir=bundle)
    return create_app(daemon), daemon


@dataclass
class DaemonProcess:
    process: subprocess.Popen
    url: str
    stderr_path: Path
    db_path: Path
    extra: dict = field(default_factory=dict)

    def log_events(self) -> list[dict]:
        events = []
        for line in self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return events

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_daemon(
    tmp_path: Path,
    bundle: Path | None,
    db_path: Path | None = None,
    config_text: str = "",
    extra_args: tuple[str, ...] = (),
    env: dict | None = None,
    wait_ready: bool = True,
) -> DaemonProcess:
    """Start `careeredge serve --port 0` and wait for the URL it prints (it binds before printing)."""
    db_path = db_path or tmp_path / "predictions.db"
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_text, encoding="utf-8")
    stderr_path = tmp_path / f"daemon-{time.monotonic_ns()}.log"
    args = [
        sys.executable,
        "-m",
        "device.cli",
        "serve",
        "--port",
        "0",
        "--config",
        str(config_path),
        "--db",
        str(db_path),
    ]
    if bundle is not None:
        args += ["--model", str(bundle)]
    full_env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    full_env = {k: v for k, v in full_env.items() if not k.startswith("CAREEREDGE_") or k in (env or {})}
    stderr = stderr_path.open("wb")
    process = subprocess.Popen(
        [*args, *extra_args], cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    if not wait_ready:
        return DaemonProcess(process, "", stderr_path, db_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = URL_LINE.search(line or "")
        if match:
            return DaemonProcess(process, match.group(1), stderr_path, db_path)
        if process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"daemon did not start: {stderr_path.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def daemon_factory(tmp_path):
    started: list[DaemonProcess] = []

    def factory(*args, **kwargs) -> DaemonProcess:
        daemon = start_daemon(tmp_path, *args, **kwargs)
        started.append(daemon)
        return daemon

    yield factory
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=10)


def post_json(url: str, body, timeout: float = 10) -> requests.Response:
    return requests.post(url, json=body, timeout=timeout)


def post_form(client, data: dict, path: str = "/"):
    """Submit the classify form as a browser does: load the page (CSRF cookie + token), then post."""
    import re

    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(path, data={**data, "csrf_token": token})
