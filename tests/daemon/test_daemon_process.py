"""`careeredge serve` as a real subprocess on a free loopback port."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import requests

from tests.daemon.conftest import REPO_ROOT, post_json
from tests.support.kill_under_load import kill_under_load

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
    report = kill_under_load(lambda db: daemon_factory(tiny_bundle, db_path=db), tmp_path / "reliability.db", kills=5)
    assert report.integrity == "ok"
    assert report.duplicated == 0, "duplicate rows"
    assert report.lost == 0, f"{report.lost} acknowledged predictions lost"
    assert report.acknowledged >= 200
