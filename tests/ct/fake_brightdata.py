"""A real HTTP server on loopback that plays Bright Data's Web Scraper API flow.

trigger -> progress (a scripted sequence of statuses, e.g. pending, running, ready) -> snapshot,
with scripted faults: answer the next N requests of an endpoint with 429/500, reject the token,
fail the snapshot, serve an empty snapshot. Every request is logged for the assertions.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VALID_TOKEN = "test-token-123"
SNAPSHOT_ID = "s_test0001"


@dataclass
class Script:
    records: list = field(default_factory=list)
    statuses: list = field(default_factory=lambda: ["pending", "running", "ready"])
    faults: dict = field(default_factory=dict)  # endpoint -> list of status codes to answer first
    snapshot_body: bytes | None = None  # overrides the records (e.g. b"[]")
    building_first: int = 0  # 202 "building" answers before the snapshot
    failure_reason: str = "Collection failed: blocked"
    retry_after: str = "0"  # the Retry-After header of a 429 (seconds or an HTTP date)
    valid_token: str = VALID_TOKEN


@dataclass
class LoggedRequest:
    method: str
    endpoint: str
    path: str
    query: dict
    body: object
    status: int


class FakeBrightData:
    def __init__(self, script: Script | None = None):
        self.script = script or Script()
        self.log: list[LoggedRequest] = []
        self._progress_calls = 0
        self._building_left = self.script.building_first
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBrightData:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, endpoint: str) -> list[LoggedRequest]:
        return [r for r in self.log if r.endpoint == endpoint]

    # -- request handling ----------------------------------------------------------------------

    def respond(self, method: str, path: str, query: dict, headers, body) -> tuple[int, dict, bytes]:
        endpoint = path.split("/")[3] if path.startswith("/datasets/v3/") else "?"
        if headers.get("Authorization") != f"Bearer {self.script.valid_token}":
            return 401, {}, b'{"error": "Invalid or expired token"}'
        pending_faults = self.script.faults.get(endpoint)
        if pending_faults:
            code = pending_faults.pop(0)
            return (
                code,
                {"Retry-After": self.script.retry_after} if code == 429 else {},
                b'{"error": "simulated fault"}',
            )
        if endpoint == "trigger" and method == "POST":
            return 200, {}, json.dumps({"snapshot_id": SNAPSHOT_ID}).encode()
        if endpoint == "progress":
            statuses = self.script.statuses
            status = statuses[min(self._progress_calls, len(statuses) - 1)]
            self._progress_calls += 1
            payload = {"snapshot_id": SNAPSHOT_ID, "dataset_id": query.get("dataset_id", ""), "status": status}
            if status == "ready":
                payload["records"] = len(self.script.records)
            if status == "failed":
                payload["error"] = self.script.failure_reason
            return 200, {}, json.dumps(payload).encode()
        if endpoint == "snapshot":
            if self._building_left > 0:
                self._building_left -= 1
                return 202, {}, b'{"status": "building", "message": "Snapshot is building, try again in 10s"}'
            body = self.script.snapshot_body
            return 200, {}, body if body is not None else json.dumps(self.script.records).encode()
        return 404, {}, b'{"error": "not found"}'

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, extra_headers, payload = fake.respond(method, parts.path, query, self.headers, body)
                endpoint = parts.path.split("/")[3] if parts.path.startswith("/datasets/v3/") else "?"
                fake.log.append(LoggedRequest(method, endpoint, parts.path, query, body, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in extra_headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def log_message(self, *args) -> None:
                pass

        return Handler
