"""Malformed HTTP requests for the daemon, generated from a seed, sent over raw sockets.

Each case is the raw bytes of one request (`Connection: close`, one connection each), so the fuzz
reaches every layer: waitress' parser (request lines, headers, chunked bodies), Flask's routing and
form parsing, and the JSON API's validation. What a case may get back: any 1xx-4xx status, or no
answer at all (waitress closes a connection it cannot parse); never a 5xx.

Used by tests/daemon/test_web_faults.py (a few hundred cases) and scripts/bench_faults.py (thousands,
with the daemon's RSS measured around them).
"""

from __future__ import annotations

import json
import random
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

PATHS = (
    "/",
    "/history",
    "/status",
    "/healthz",
    "/api/v1/predict",
    "/api/v1/predictions",
    "/api/v1/status",
    "/api/v1/admin/prune",
    "/api/v1/admin/reload-model",
    "/api/v1/admin/rollback",
    "/static/style.css",
)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FOO", "G\x00T", "")
WEIRD_TEXT = (
    "\\ud800",
    "\\udfff lone low",
    "\\u0000",
    "a\\u0000b",
    "\\ufeff",
    "\\u202e reversed",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%s%s%n",
    "\\n\\r\\t",
    "😀" * 50,
    "x" * 60_000,
    "Data scientist: pandas, SQL",
)
NUMBERS = (
    "-1",
    "0",
    "1",
    "1e999",
    "-1e999",
    "1.5",
    "9" * 25,
    "9" * 4400,
    "NaN",
    "Infinity",
    "true",
    "null",
    "[]",
    "{}",
)
QUERY_VALUES = (
    "",
    "-1",
    "0",
    "1",
    "2",
    "200",
    "201",
    "99999999999999999999999",
    "9223372036854775808",
    "1e3",
    "0x10",
    "²",
    "٣",
    "１",
    " 1",
    "1 ",
    "%00",
    "%zz",
    "%",
    "all",
    "\u202e",
    "a" * 5000,
)


@dataclass
class FuzzResult:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    no_answer: int = 0
    server_errors: list[str] = field(default_factory=list)  # descriptions of cases answered 5xx

    def add(self, description: str, status: int | None) -> None:
        self.sent += 1
        if status is None:
            self.no_answer += 1
            return
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(f"{status} {description[:200]}")

    def merge(self, other: FuzzResult) -> None:
        self.sent += other.sent
        self.statuses.update(other.statuses)
        self.no_answer += other.no_answer
        self.server_errors.extend(other.server_errors)

    def as_dict(self) -> dict:
        return {
            "sent": self.sent,
            "answered_5xx": len(self.server_errors),
            "no_answer": self.no_answer,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": self.server_errors[:20],
        }


def cases(
    seed: int, count: int, admin_token: str | None = None, host: str = "127.0.0.1"
) -> Iterator[tuple[str, bytes]]:
    """`count` (description, raw request) pairs, the same for the same seed."""
    rng = random.Random(seed)
    makers = (_json_body, _query, _form, _headers, _request_line, _admin, _chunked)
    for _ in range(count):
        maker = rng.choice(makers)
        yield maker(rng, admin_token, host)


def send(host: str, port: int, raw: bytes, timeout: float = 10.0) -> int | None:
    """Send one raw request; the status code of the answer, or None when the server closed without one."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)  # no more bytes: a short body ends here instead of hanging
        except OSError:
            pass  # the server stopped reading (e.g. a 413 sent early); its answer may still be there
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except (ConnectionResetError, TimeoutError, OSError):
            pass
    parts = answer.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def run(host: str, port: int, seed: int, count: int, admin_token: str | None = None) -> FuzzResult:
    result = FuzzResult()
    for description, raw in cases(seed, count, admin_token, host):
        result.add(description, send(host, port, raw))
    return result


# --- request makers -------------------------------------------------------------------------------


def _request(method: str, target: str, host: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    headers = dict(headers or {})
    if body and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass") + body


def _nested(rng: random.Random) -> str:
    depth = rng.choice((50, 900, 1100, 5000, 20000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    return opener * depth + "1" + closer * (depth if rng.random() < 0.5 else 0)


def _json_value(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return '"' + rng.choice(WEIRD_TEXT) + '"'
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return _nested(rng)
    if kind == 3:
        return json.dumps([rng.choice(WEIRD_TEXT)] * rng.choice((1, 3, 1000)))
    if kind == 4:
        return '{"' + rng.choice(WEIRD_TEXT) + '": 1}'
    return '"' + "\\u" + "".join(rng.choice("0123456789abcdefDX") for _ in range(4)) + '"'


def _json_body(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    fields = {"text": _json_value(rng) if rng.random() < 0.7 else '"Data scientist: pandas"'}
    for name in rng.sample(["id", "explain", "advice", "skills", "text", "extra"], k=rng.randrange(4)):
        fields[name] = _json_value(rng)
    shape = rng.randrange(8)
    if shape == 0:
        body = _nested(rng)
    elif shape == 1:
        body = rng.choice(('"just a string"', "[1,2]", "null", "", " ", "{", '{"text": "x"} trailing', "\ufeff{}"))
    else:
        body = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    encoded = body.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        encoded = encoded[: rng.randrange(len(encoded) + 1)] + bytes([rng.randrange(256)])  # cut + a stray byte
    content_type = rng.choice(
        (
            "application/json",
            "application/json; charset=utf-16",
            "application/merge-patch+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        )
    )
    headers = {"Content-Type": content_type} if content_type else {}
    path = rng.choice(("/api/v1/predict", "/api/v1/predict", "/api/v1/admin/prune", "/"))
    return f"JSON {path} {body[:120]!r}", _request("POST", path, host, headers, encoded)


def _query(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    path = rng.choice(("/api/v1/predictions", "/history", "/", "/status", "/healthz"))
    names = rng.sample(["limit", "offset", "label", "page", "token", "limit"], k=rng.randrange(1, 4))
    query = "&".join(f"{quote(n)}={_raw_query_value(rng)}" for n in names)
    return f"GET {path}?{query[:120]}", _request("GET", f"{path}?{query}", host)


def _raw_query_value(rng: random.Random) -> str:
    value = rng.choice(QUERY_VALUES)
    return value if value.startswith("%") else quote(value, safe="")


def _form(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    kind = rng.randrange(4)
    if kind == 0:
        body = "text=" + quote(rng.choice(WEIRD_TEXT).encode("utf-8", "surrogatepass"), safe="") + "&skills=%ED%A0%80"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif kind == 1:
        body = "&".join(f"f{i}=x" for i in range(rng.choice((10, 5000))))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif kind == 2:
        boundary = "b" * rng.randrange(1, 80)
        body = f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello\r\n'
        if rng.random() < 0.5:
            body += f"--{boundary}--\r\n"
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    else:
        body = "text=" + "%" * rng.randrange(1, 50)
        headers = {"Content-Type": rng.choice(("application/x-www-form-urlencoded", "multipart/form-data"))}
    return f"FORM {body[:120]!r}", _request("POST", "/", host, headers, body.encode("utf-8", "surrogatepass"))


def _headers(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    path = rng.choice(PATHS)
    kind = rng.randrange(7)
    body = b'{"text": "Data scientist: pandas, SQL"}'
    headers = {"Content-Type": "application/json"}
    if kind == 0:
        headers["Content-Length"] = rng.choice(("-1", "abc", "99999999999999999999", "5", " 10", "1e3"))
    elif kind == 1:
        headers["Host"] = rng.choice(("", "evil.example", "a" * 5000, "127.0.0.1:99999", "[::1", "\u0000"))
    elif kind == 2:
        headers.update({f"X-H{i}": "v" * rng.choice((1, 8000)) for i in range(rng.choice((5, 200)))})
    elif kind == 3:
        headers["Authorization"] = rng.choice(
            ("Bearer", "Bearer " + "x" * 10_000, "Basic Zm9vOmJhcg==", "Bearer \u202e")
        )
    elif kind == 4:
        headers["Transfer-Encoding"] = "chunked"  # and a Content-Length too: request smuggling shape
        headers["Content-Length"] = "4"
    elif kind == 5:
        headers["Cookie"] = rng.choice(("a=" + "b" * 9000, "csrf=\x00", "=;=;=", "careeredge_csrf=" + "%" * 100))
    else:
        headers["Origin"] = rng.choice(("null", "http://evil.example", "http://127.0.0.1:1", "\u202e"))
    method = rng.choice(("GET", "POST"))
    return f"HEADERS {method} {path} {str(headers)[:120]}", _request(method, path, host, headers, body)


def _request_line(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    kind = rng.randrange(6)
    if kind == 0:
        line = f"{rng.choice(METHODS)} {rng.choice(PATHS)} HTTP/1.1"
    elif kind == 1:
        line = f"GET {rng.choice(PATHS)} HTTP/{rng.choice(('0.9', '1.0', '2.0', '9.9', 'x'))}"
    elif kind == 2:
        target = rng.choice(
            (
                "/" + "a" * 9000,
                "//",
                "/../../etc/passwd",
                "/static/..%2f..%2fetc%2fpasswd",
                "/%00",
                "/%",
                "/\u202e",
                "*",
                "http://evil.example/",
                "/api/v1/predict/extra",
                "/api//v1/predict",
                "/history/",
                "/static/",
            )
        )
        line = f"GET {target} HTTP/1.1"
    elif kind == 3:
        line = "GET /"  # no version
    elif kind == 4:
        line = "\x16\x03\x01\x02\x00\x01"  # a TLS ClientHello on the plain port
    else:
        line = " ".join(["GET"] * rng.randrange(1, 6))
    raw = (line + "\r\nHost: " + host + "\r\nConnection: close\r\n\r\n").encode("utf-8", "surrogatepass")
    if rng.random() < 0.3:
        raw = raw.replace(b"\r\n", b"\n")
    return f"LINE {line[:120]!r}", raw


def _admin(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    path = rng.choice(("/api/v1/admin/prune", "/api/v1/admin/reload-model", "/api/v1/admin/rollback"))
    value = rng.choice(
        (
            '"\\u0000"',
            '"' + "a" * 5000 + '"',
            '"/dev/zero"',
            '"/proc/self"',
            '"../../../../etc"',
            '"\\ud800"',
            "10000000000000",
            "-5",
            "1.5",
            "true",
            "[]",
            "{}",
            "null",
            "9" * 30,
        )
    )
    key = "retention_days" if path.endswith("prune") else "bundle"
    headers = {"Content-Type": "application/json"}
    if token and rng.random() < 0.8:
        headers["Authorization"] = f"Bearer {token}"
    body = f'{{"{key}": {value}}}'.encode()
    return f"ADMIN {path} {key}={value[:80]}", _request("POST", path, host, headers, body)


def _chunked(rng: random.Random, token: str | None, host: str) -> tuple[str, bytes]:
    sizes = rng.choice(
        ("5\r\nhello\r\n0\r\n\r\n", "zz\r\nhello\r\n0\r\n\r\n", "ffffffffff\r\nx", "5\r\nhel", "-1\r\n\r\n")
    )
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    return f"CHUNKED {sizes[:60]!r}", _request("POST", "/api/v1/predict", host, headers, sizes.encode())
