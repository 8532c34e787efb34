"""The LAN page against a hostile network or web page: CSRF on the form, a Host allow-list (DNS
rebinding), and an optional read token for everything but /healthz."""

from __future__ import annotations

import re

import pytest

from tests.daemon.conftest import app_and_daemon_for

DS_TEXT = "We need statistics, pandas, SQL and A/B testing for data analysis and forecasting."
READ_TOKEN = "a-long-read-token-for-the-lan"
ADMIN_TOKEN = "a-long-admin-token-for-tests"


def make_app(tmp_path, bundle, **web):
    return app_and_daemon_for(tmp_path, bundle, admin_token=ADMIN_TOKEN, **web)


@pytest.fixture
def client(tmp_path, tiny_bundle):
    app, daemon = make_app(tmp_path, tiny_bundle)
    yield app.test_client()
    daemon.close()


def form_token(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def test_the_classify_form_needs_the_token_the_page_handed_out(client):
    forged = client.post("/", data={"text": DS_TEXT})  # what a hostile page's auto-submitting form sends
    assert forged.status_code == 403 and "reload" in forged.get_data(as_text=True).lower()
    token = form_token(client.get("/").get_data(as_text=True))
    assert client.post("/", data={"text": DS_TEXT, "csrf_token": token + "x"}).status_code == 403
    accepted = client.post("/", data={"text": DS_TEXT, "csrf_token": token})
    assert accepted.status_code == 200 and 'id="result-label"' in accepted.get_data(as_text=True)
    cross_site = client.post(
        "/", data={"text": DS_TEXT, "csrf_token": token}, headers={"Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403


def test_only_allowed_host_names_are_served(tmp_path, tiny_bundle):
    app, daemon = make_app(tmp_path, tiny_bundle, allowed_hosts=["careeredge.lan"])
    client = app.test_client()
    try:
        for host in ("evil.example", "evil.example:8321", "127.0.0.1.evil.example"):
            response = client.get("/api/v1/status", headers={"Host": host})  # DNS rebinding's Host header
            assert response.status_code == 400 and "Host" in response.get_json()["error"]
        for host in ("127.0.0.1:8321", "192.168.1.20", "[::1]:8321", "localhost", "careeredge.lan:8321"):
            assert client.get("/api/v1/status", headers={"Host": host}).status_code == 200, host
    finally:
        daemon.close()


def test_a_read_token_guards_everything_but_healthz(tmp_path, tiny_bundle):
    app, daemon = make_app(tmp_path, tiny_bundle, read_token=READ_TOKEN)
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        for path in ("/", "/history", "/status", "/api/v1/predictions", "/api/v1/status"):
            assert client.get(path).status_code == 401, path
        assert client.post("/api/v1/predict", json={"text": DS_TEXT}).status_code == 401
        bearer = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert client.get("/api/v1/predictions", headers=bearer).status_code == 200
        assert client.get("/api/v1/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
        assert (
            client.get("/api/v1/status", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        )
        # A browser: open the page once with ?token=..., then a cookie carries it (and the URL drops it).
        entry = client.get(f"/history?token={READ_TOKEN}")
        assert entry.status_code == 303 and entry.headers["Location"].endswith("/history")
        assert "HttpOnly" in entry.headers["Set-Cookie"] and "SameSite=Strict" in entry.headers["Set-Cookie"]
        assert client.get("/history").status_code == 200
    finally:
        daemon.close()
