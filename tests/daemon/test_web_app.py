"""The Flask app in-process with a real tiny model and a real SQLite file: API contract, bad
input (always 4xx JSON), size limit, admin token, full disk, pages, escaping, degraded mode."""

from __future__ import annotations

import logging
import uuid

import pytest

from device.daemon import Daemon
from device.web import create_app
from tests.daemon.conftest import make_config, post_form

CLI_KEYS = {"id", "label", "label_name", "probabilities", "model_version", "latency_ms"}
DS_TEXT = "We need statistics, pandas, SQL and A/B testing for data analysis and forecasting."
TOKEN = "a-long-admin-token-for-tests"


@pytest.fixture
def app_and_daemon(tmp_path, tiny_bundle):
    config = make_config(tmp_path, tiny_bundle)
    config.override("admin", token=TOKEN)
    config.override("web", max_request_bytes=4096)
    daemon = Daemon(config, bundle_dir=tiny_bundle)
    yield create_app(daemon), daemon
    daemon.close()


@pytest.fixture
def client(app_and_daemon):
    return app_and_daemon[0].test_client()


def test_predict_returns_the_cli_object_plus_stored(client, app_and_daemon):
    response = client.post("/api/v1/predict", json={"text": DS_TEXT})
    assert response.status_code == 200
    body = response.get_json()
    assert CLI_KEYS | {"stored"} == set(body)
    assert body["label"] == 1 and body["label_name"] == "Data Science" and body["stored"] is True
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    row = app_and_daemon[1].store.get(body["id"])
    assert row["source"] == "api" and row["label"] == 1 and row["text"] == DS_TEXT


def test_predict_extras_and_idempotent_id(client, app_and_daemon):
    key = str(uuid.uuid4())
    body = {"text": DS_TEXT, "id": key, "explain": True, "advice": True, "skills": ["SQL"]}
    first = client.post("/api/v1/predict", json=body).get_json()
    second = client.post("/api/v1/predict", json=body).get_json()
    assert first["id"] == second["id"] == key
    assert app_and_daemon[1].store.count() == 1
    assert {t["term"] for t in first["driving_terms"]} <= {"Statistics", "pandas", "SQL", "A/B Testing", "Time Series"}
    assert first["advice"]["matched"] == ["SQL"]


@pytest.mark.parametrize(
    "kwargs, status, fragment",
    [
        ({"data": "text=hello", "content_type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid JSON"),
        ({"data": "", "content_type": "application/json"}, 400, "empty request body"),
        ({"data": b"\xff\xfe\x00", "content_type": "application/json"}, 400, ""),
        ({"json": ["a list"]}, 400, "JSON object"),
        ({"json": {"txt": "typo"}}, 400, "missing field 'text'"),
        ({"json": {"text": 42}}, 400, "must be a string"),
        ({"json": {"text": ""}}, 400, "empty"),
        ({"json": {"text": " \n\t "}}, 400, "whitespace-only"),
        ({"json": {"text": "ok", "id": "not-a-uuid"}}, 400, "UUID"),
        ({"json": {"text": "ok", "explain": "yes"}}, 400, "true or false"),
        ({"json": {"text": "x" * 5000}}, 413, "too large"),
    ],
)
def test_bad_predict_requests_get_a_4xx_json_error(client, app_and_daemon, kwargs, status, fragment):
    response = client.post("/api/v1/predict", **kwargs)
    assert response.status_code == status
    assert response.is_json and fragment in response.get_json()["error"]
    assert app_and_daemon[1].store.count() == 0


def test_api_errors_for_routes_and_methods(client):
    assert client.get("/api/v1/predict").status_code == 405
    assert client.get("/api/v1/predict").get_json()["status"] == 405
    assert client.get("/api/v1/nope").get_json()["status"] == 404
    assert client.get("/api/v1/predictions?limit=0").status_code == 400
    assert client.get("/api/v1/predictions?limit=abc").status_code == 400
    assert client.get("/api/v1/predictions?label=2").status_code == 400


def test_predictions_are_paginated_and_filtered(client):
    for i in range(5):
        client.post("/api/v1/predict", json={"text": f"{DS_TEXT} #{i}"})
    client.post("/api/v1/predict", json={"text": "Backend java developer: kubernetes, react, microservices, docker"})
    page = client.get("/api/v1/predictions?limit=2&offset=0").get_json()
    assert page["total"] == 6 and len(page["items"]) == 2
    assert "text" not in page["items"][0] and page["items"][0]["snippet"]
    assert client.get("/api/v1/predictions?label=0").get_json()["total"] == 1
    assert client.get("/api/v1/predictions?label=1&limit=200").get_json()["total"] == 5


def test_status_and_healthz(client):
    status = client.get("/api/v1/status").get_json()
    assert status["model"]["loaded"] and status["manifest"]["name"] == "tiny_model"
    assert status["database"]["schema_version"] >= 1 and "sync" in status
    assert status["config"]["admin"]["token"] == "***"
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["model"]["version"] == "tiny_model@1" and health.get_json()["database"]["ok"]


def test_admin_prune_needs_the_token(client, app_and_daemon):
    assert client.post("/api/v1/admin/prune").status_code == 401
    wrong = client.post("/api/v1/admin/prune", headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
    assert wrong.status_code == 401
    ok = client.post("/api/v1/admin/prune", headers={"Authorization": f"Bearer {TOKEN}"}, json={"retention_days": 1})
    assert ok.status_code == 200 and ok.get_json()["deleted"] == 0


def test_admin_is_off_without_a_configured_token(tmp_path, tiny_bundle):
    config = make_config(tmp_path, tiny_bundle)
    app = create_app(Daemon(config, bundle_dir=tiny_bundle))
    response = app.test_client().post("/api/v1/admin/prune", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "[admin] token" in response.get_json()["error"]


def test_full_disk_still_answers_with_stored_false(client, app_and_daemon, caplog):
    store = app_and_daemon[1].store
    pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
    store.connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now reports "database or disk is full"
    with caplog.at_level(logging.ERROR, logger="device.daemon"):
        answers = [client.post("/api/v1/predict", json={"text": DS_TEXT + " padding" * 300}) for _ in range(30)]
    assert all(r.status_code == 200 for r in answers)
    refused = [r.get_json() for r in answers if not r.get_json()["stored"]]
    assert refused and refused[-1]["label"] == 1
    errors = [r for r in caplog.records if r.getMessage() == "prediction.not_stored"]
    assert errors and "database or disk is full" in errors[-1].fields["error"]


def test_classify_page_shows_result_and_escapes_markup(client):
    page = client.get("/")
    assert page.status_code == 200 and b'<textarea id="text"' in page.data
    posted = post_form(client, {"text": DS_TEXT + " <script>alert('x')</script>", "skills": "SQL"})
    html = posted.get_data(as_text=True)
    assert posted.status_code == 200
    assert 'id="result-label">Data Science<' in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
    assert '<mark class="' in html and "Career advice" in html and "Next skills to learn" in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_empty_form_is_a_400_page(client):
    response = post_form(client, {"text": "   "})
    assert response.status_code == 400 and b"whitespace-only" in response.data


def test_history_and_status_pages(client):
    post_form(client, {"text": DS_TEXT})
    history = client.get("/history?label=1").get_data(as_text=True)
    assert 'id="history"' in history and "Data Science" in history and "page 1 of 1" in history
    assert client.get("/history?label=7").status_code == 400
    status = client.get("/status").get_data(as_text=True)
    assert "tiny_model@1" in status and 'id="db-size"' in status and 'id="sync"' in status


def test_degraded_mode_without_a_bundle(tmp_path):
    config = make_config(tmp_path, None)
    daemon = Daemon(config)
    client = create_app(daemon).test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "degraded" and not body["model"]["loaded"]
    assert "no-such-bundle" in body["model"]["error"] and "--model" in body["model"]["fix"]
    page = client.get("/").get_data(as_text=True)
    assert "Degraded: no model loaded" in page and "How to fix" in page
    predict = client.post("/api/v1/predict", json={"text": DS_TEXT})
    assert predict.status_code == 503 and "fix" in predict.get_json()
    assert client.get("/api/v1/predictions").status_code == 200  # history still readable
