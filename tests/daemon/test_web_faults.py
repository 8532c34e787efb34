"""Malformed and hostile HTTP: every bad request gets a 4xx (never a 5xx), a reused id with other text
is a conflict, and a fuzz of raw requests through waitress finds no 5xx."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.daemon.conftest import app_and_daemon_for
from tests.support import http_fuzz

TOKEN = "a-long-admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DS_TEXT = "We need statistics, pandas, SQL and A/B testing for data analysis and forecasting."


@pytest.fixture
def app_and_daemon(tmp_path, tiny_bundle):
    app, daemon = app_and_daemon_for(tmp_path, tiny_bundle, admin_token=TOKEN, max_request_bytes=65536)
    yield app, daemon
    daemon.close()


@pytest.fixture
def client(app_and_daemon):
    return app_and_daemon[0].test_client()


def json_post(body: str) -> dict:
    return {"method": "POST", "data": body, "content_type": "application/json"}


@pytest.mark.parametrize(
    "path, kwargs",
    [
        ("/api/v1/predict", json_post("[" * 5000)),  # nesting deeper than the parser's recursion limit
        ("/api/v1/predict", json_post('{"text": "x", "n": ' + "9" * 5000 + "}")),  # > 4,300 digits
        ("/api/v1/predictions?offset=99999999999999999999", {}),
        ("/api/v1/predictions?offset=9223372036854775808", {}),
        ("/history?page=%C2%B2", {}),  # '²'.isdigit() is True, int('²') fails
        ("/api/v1/admin/prune", {"method": "POST", "json": {"retention_days": 10**12}, "headers": ADMIN}),
        ("/api/v1/admin/reload-model", {"method": "POST", "json": {"bundle": "a" * 5000}, "headers": ADMIN}),
        ("/api/v1/admin/reload-model", {"method": "POST", "json": {"bundle": "x\x00y"}, "headers": ADMIN}),
    ],
)
def test_malformed_requests_get_a_4xx(client, path, kwargs):
    response = client.open(path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:200])


def test_reusing_an_id_with_different_text_is_a_conflict(client, app_and_daemon):
    key = str(uuid.uuid4())
    first = client.post("/api/v1/predict", json={"text": DS_TEXT, "id": key})
    again = client.post("/api/v1/predict", json={"text": DS_TEXT, "id": key})
    other = client.post("/api/v1/predict", json={"text": "Backend engineer: Java and Kubernetes", "id": key})
    assert first.status_code == again.status_code == 200 and again.get_json()["stored"] is True
    assert other.status_code == 409 and key in other.get_json()["error"]
    assert app_and_daemon[1].store.get(key)["text"] == DS_TEXT


def test_a_fuzz_of_raw_requests_through_waitress_gets_no_5xx(daemon_factory, tiny_bundle):
    daemon = daemon_factory(tiny_bundle, config_text=f'[admin]\ntoken = "{TOKEN}"\n')
    host, port = daemon.url.split("//")[1].rstrip("/").split(":")
    result = http_fuzz.run(host, int(port), seed=20, count=300, admin_token=TOKEN)
    assert result.server_errors == [], result.as_dict()
    assert sum(result.statuses.values()) >= 250  # the fuzz mostly got answers (not just dropped connections)
    assert requests.get(daemon.url + "healthz", timeout=10).status_code == 200
    assert not [e for e in daemon.log_events() if e.get("event") == "request.failed"]
