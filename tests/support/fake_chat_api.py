"""A real HTTP server on loopback that speaks the OpenAI chat-completions protocol, with scripted faults.

    with FakeChatApi(script) as api:
        Endpoint(base_url=api.base_url, model="fake", api_key="k")

`script(call_number, body)` returns a `Reply` (status, JSON or raw body, headers, delay before answering);
the default script answers every posting correctly by keyword, with a `usage` object. Every request is kept
in `api.requests` (body and Authorization header) so tests can assert on what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DS_WORDS = ("statistic", "data scien", "analyst", "regression", "pandas", "a/b test", "tableau", "forecast")


@dataclass
class Reply:
    status: int = 200
    json_body: object | None = None
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(content: str, prompt_tokens: int | None = 1200, completion_tokens: int | None = 6) -> dict:
    body: dict = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    if prompt_tokens is not None:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + (completion_tokens or 0),
        }
    return body


def keyword_label(body: dict) -> int:
    posting = body["messages"][-1]["content"].lower()
    return int(any(word in posting for word in DS_WORDS))


def answer_by_keyword(call: int, body: dict) -> Reply:
    return Reply(json_body=completion(json.dumps({"label": keyword_label(body)})))


class FakeChatApi:
    def __init__(self, script: Callable[[int, dict], Reply] = answer_by_keyword):
        self.script = script
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with api._lock:
                    call = len(api.requests)
                    api.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                if self.path != "/v1/chat/completions":
                    reply = Reply(status=404, json_body={"error": {"message": "not found"}})
                else:
                    reply = api.script(call, body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.raw_body if reply.raw_body is not None else json.dumps(reply.json_body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeChatApi:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
