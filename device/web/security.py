"""What keeps a hostile network or a hostile web page away from the LAN page.

* Host allow-list: a request whose Host header is not this device is refused (400). DNS rebinding
  points an attacker's name at the device's LAN address so that the victim's browser treats the
  device as the attacker's origin; the Host header still carries the attacker's name. Allowed: IP
  literals, `localhost`, this machine's hostname (and `<hostname>.local`), and `[web] allowed_hosts`
  (`"*"` allows any, behind a reverse proxy that checks it).
* CSRF on the classify form (signed double submit): the page sets a random cookie (SameSite=Strict,
  HttpOnly) and embeds HMAC(process secret, cookie) in the form; a POST needs both to match, and a
  cross-site `Origin` or `Sec-Fetch-Site` is refused. Another site can make a browser post the form
  but can read neither value. The JSON API needs no token: browsers only send `application/json`
  cross-site after a CORS preflight, which this app never grants, and other content types get 415.
* Read token (`[web] read_token`, optional): every route but /healthz and /static needs it, as
  `Authorization: Bearer <token>` (the admin token works too) or, for a browser, a cookie set by
  opening any page once with `?token=<token>` (the address bar then drops it).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlencode, urlsplit

from flask import Flask, g, redirect, request
from werkzeug.exceptions import HTTPException

CSRF_COOKIE = "careeredge_csrf"
CSRF_FIELD = "csrf_token"
READ_COOKIE = "careeredge_read"
READ_PARAM = "token"
OPEN_PATHS = ("/healthz", "/static/")


class Refused(HTTPException):
    """A 4xx raised before any view runs; rendered by device.web.errors like any HTTP error."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code


def register(app: Flask, web_config, admin_token: str | None) -> None:
    secret = secrets.token_bytes(32)  # per process: a restart makes open forms ask for a reload
    hosts = allowed_hosts(web_config.allowed_hosts)
    read_tokens = [t for t in (web_config.read_token, admin_token) if t] if web_config.read_token else []

    @app.before_request
    def guard():
        check_host(request.host, hosts)
        if read_tokens and not request.path.startswith(OPEN_PATHS):
            entry = check_read_token(read_tokens)
            if entry is not None:
                return entry
        nonce = request.cookies.get(CSRF_COOKIE, "")
        g.csrf_nonce = nonce if len(nonce) == 32 else secrets.token_hex(16)
        if request.method == "POST" and not request.path.startswith("/api/"):
            check_csrf(secret, g.csrf_nonce, nonce)
        return None

    @app.after_request
    def set_csrf_cookie(response):
        nonce = g.get("csrf_nonce")
        if nonce and request.cookies.get(CSRF_COOKIE) != nonce and response.mimetype == "text/html":
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Strict")
        return response

    app.jinja_env.globals["csrf_token"] = lambda: _sign(secret, g.get("csrf_nonce", ""))


def allowed_hosts(configured: list[str]) -> frozenset[str]:
    name = socket.gethostname().lower()
    return frozenset({"localhost", name, f"{name}.local", *(h.lower() for h in configured)})


def check_host(host_header: str, allowed: frozenset[str]) -> None:
    if "*" in allowed:
        return
    host = _host_name(host_header)
    if host is None or not (host in allowed or _is_ip_literal(host)):
        raise Refused(400, f"Host {host_header[:100]!r} is not allowed (add it to [web] allowed_hosts)")


def _host_name(host_header: str) -> str | None:
    """The name part of a Host header ("[::1]:8321" -> "::1"), lower-cased; None if it is malformed."""
    try:
        parsed = urlsplit(f"//{host_header}")
        parsed.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return None
    return (parsed.hostname or "").lower() or None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_read_token(tokens: list[str]):
    """None when the request carries a read token; a redirect that trades ?token= for a cookie; else 401."""
    if bearer_matches(tokens):
        return None
    if _matches(request.cookies.get(READ_COOKIE, ""), tokens):
        return None
    offered = request.args.get(READ_PARAM, "")
    if offered and _matches(offered, tokens) and request.method == "GET":
        rest = [(k, v) for k, v in request.args.items(multi=True) if k != READ_PARAM]
        response = redirect(request.path + (f"?{urlencode(rest)}" if rest else ""), code=303)
        response.set_cookie(READ_COOKIE, offered, httponly=True, samesite="Strict")
        return response
    raise Refused(401, "this device needs its read token: Authorization: Bearer <token>, or open a page with ?token=")


def check_csrf(secret: bytes, nonce: str, cookie: str) -> None:
    if request.headers.get("Sec-Fetch-Site") == "cross-site" or not _same_origin(request.headers.get("Origin")):
        raise Refused(403, "form posted from another site; open the page on this device and submit it there")
    presented = request.form.get(CSRF_FIELD, "")
    if not cookie or cookie != nonce or not hmac.compare_digest(presented, _sign(secret, nonce)):
        raise Refused(403, "the form expired or did not come from this page; reload the page and submit again")


def _same_origin(origin: str | None) -> bool:
    if not origin:
        return True  # older browsers and non-browser clients send none; the token still has to match
    try:
        return urlsplit(origin).netloc.lower() == request.host.lower()
    except ValueError:
        return False


def _sign(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()


def bearer_matches(tokens: list[str]) -> bool:
    """Whether the request's `Authorization: Bearer <token>` is one of `tokens` (compared in constant time:
    response timing must not reveal how much of a guess was right)."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and _matches(presented.strip(), tokens)


def _matches(presented: str, tokens: list[str]) -> bool:
    return any(hmac.compare_digest(presented.encode(), token.encode()) for token in tokens)
