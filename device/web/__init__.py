"""The LAN web UI and JSON API: a Flask app factory plus blueprints (flaskr style).

    app = create_app(daemon)   # the app serves the Daemon it is given (model, store, config)

Blueprints: `pages` (classify, history, status: server-rendered, no JavaScript needed),
`api` (/api/v1/...), `health` (/healthz). `security` checks the Host header, the form's CSRF token
and the optional read token before any of them runs. Templates autoescape; all assets are vendored under
`static/` (hand-written CSS), so the page works with no internet and on a phone.
"""

from __future__ import annotations

from flask import Flask

from device.daemon import Daemon


def create_app(daemon: Daemon) -> Flask:
    """The Flask app over `daemon`; its limits come from `daemon.config` ([web] max_request_bytes)."""
    from device.web import api, errors, health, pages, security

    config = daemon.config
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=config.web.max_request_bytes,
        # Forms are parsed into memory only up to the same bound as JSON bodies.
        MAX_FORM_MEMORY_SIZE=config.web.max_request_bytes,
        JSON_SORT_KEYS=False,
        CAREEREDGE_CONFIG=config,
    )
    app.json.sort_keys = False
    app.extensions["careeredge"] = daemon
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    security.register(app, config.web, config.admin.token)
    errors.register(app)
    _log_requests(app)
    return app


def _log_requests(app: Flask) -> None:
    """One structured line per request at DEBUG (INFO would wear an SD card at 50 requests/s)."""
    import logging
    import time

    from flask import g, request

    log = logging.getLogger("device.web.access")

    @app.before_request
    def _start_timer():
        g.request_began = time.perf_counter()

    @app.after_request
    def _log(response):
        if log.isEnabledFor(logging.DEBUG):
            began = g.get("request_began", time.perf_counter())
            log.debug(
                "http.request",
                extra={
                    "fields": {
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                        "remote": request.remote_addr,
                    }
                },
            )
        return response
