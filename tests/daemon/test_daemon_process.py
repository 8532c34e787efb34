"""`careeredge serve` as a real subprocess on a free loopback port."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import requests

from tests.daemon.conftest import REPO_ROOT, post_json

DS_TEXT = "Data analyst: statistics, SQL, pandas, dashboards and A/B testing."


def test_serve_answers_and_stops_gracefully_on_sigterm(daemon_factory, tiny_bundle):
    daemon = daemon_factory(tiny_bundle)
    health = requests.get(daemon.url + "healthz", timeout=10)
    assert health.status_code == 200 and health.json()["model"]["version"] == "tiny_model@1"
    answer = post_json(daemon.url + "api/v1/predict", {"text": DS_TEXT})
    assert answer.status_code == 200 and answer.json()["stored"] is True
    assert requests.get(daemon.url, timeout=10).status_code == 200

    assert daemon.stop(signal.SIGTERM) == 0
    events = [e["event"] for e in daemon.log_events()]
    assert {"model.loaded", "daemon.listening", "shutdown.requested", "daemon.stopped"} <= set(events)
    with sqlite3.connect(daemon.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM predictions WHERE uuid = ?", [answer.json()["id"]]).fetchone()[0] == 1


def test_bad_requests_through_waitress_get_4xx_json(daemon_factory, tiny_bundle):
    daemon = daemon_factory(tiny_bundle, config_text="[web]\nmax_request_bytes = 65536\n")
    url = daemon.url + "api/v1/predict"
    cases = [
        (dict(data="not json", headers={"Content-Type": "application/json"}), 400),
        (dict(data="text=hi", headers={"Content-Type": "text/plain"}), 415),
        (dict(json={"text": ""}), 400),
        (dict(json={"nope": 1}), 400),
        (dict(json={"text": "x" * 70_000}), 413),
        # chunked upload without Content-Length: the limit still holds
        (
            dict(
                data=(part for part in [b'{"text": "', b"y" * 70_000, b'"}']),
                headers={"Content-Type": "application/json"},
            ),
            413,
        ),
    ]
    for kwargs, status in cases:
        response = requests.post(url, timeout=10, **kwargs)
        assert response.status_code == status, (kwargs.get("json"), response.text)
        assert response.headers["Content-Type"].startswith("application/json") and response.json()["error"]
    assert requests.get(daemon.url + "healthz", timeout=10).json()["database"]["rows"] == 0
    assert not [e for e in daemon.log_events() if e["level"] == "error"]


def test_degraded_daemon_starts_and_says_how_to_fix(daemon_factory, tmp_path):
    daemon = daemon_factory(tmp_path / "missing-bundle")
    health = requests.get(daemon.url + "healthz", timeout=10)
    assert health.status_code == 503
    assert health.json()["status"] == "degraded" and "missing-bundle" in health.json()["model"]["error"]
    assert "Degraded" in requests.get(daemon.url, timeout=10).text
    assert post_json(daemon.url + "api/v1/predict", {"text": DS_TEXT}).status_code == 503
    assert daemon.stop() == 0


def test_config_error_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[store]\nretention_days = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "device.cli", "serve", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "[store] retention_days" in result.stderr
    assert "Traceback" not in result.stderr


def test_kill_9_five_times_loses_no_acknowledged_prediction(daemon_factory, tiny_bundle, tmp_path):
    """Clients send predictions (each with its own id) while the daemon is SIGKILLed 5 times.
    Every id that got a 200 must be in the DB exactly once, and the DB must pass integrity_check."""
    db_path = tmp_path / "reliability.db"
    acknowledged: list[str] = []
    lock = threading.Lock()

    def client(url: str, stop: threading.Event) -> None:
        session = requests.Session()
        while not stop.is_set():
            key = str(uuid.uuid4())
            try:
                response = session.post(url + "api/v1/predict", json={"text": DS_TEXT, "id": key}, timeout=5)
            except requests.RequestException:
                continue  # the daemon died mid-request: no 200, no promise
            if response.status_code == 200 and response.json()["stored"]:
                with lock:
                    acknowledged.append(key)

    for round_number in range(5):
        daemon = daemon_factory(tiny_bundle, db_path=db_path)
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(daemon.url, stop)) for _ in range(3)]
        for thread in threads:
            thread.start()
        before = len(acknowledged)
        deadline = time.monotonic() + 20
        while len(acknowledged) < before + 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.process.kill()  # SIGKILL: no handler, no flush, no goodbye
        daemon.process.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert len(acknowledged) >= before + 40, f"round {round_number}: daemon stopped answering"

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [row[0] for row in conn.execute("SELECT uuid FROM predictions")]
    assert len(stored) == len(set(stored)), "duplicate rows"
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged predictions lost"
    assert len(acknowledged) >= 200
