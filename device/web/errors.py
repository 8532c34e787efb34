"""Errors as JSON under /api and /healthz, as a page elsewhere. Bad input is always a 4xx."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by API views for a 4xx with a JSON body {"error": message, ...details}."""

    def __init__(self, status: int, message: str, **details):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def json_error(status: int, message: str, **details):
    response = jsonify({"error": message, "status": status, **details})
    response.status_code = status
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        response = json_error(exc.status, exc.message, **exc.details)
        if "retry_after_s" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retry_after_s"])
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = {
            413: f"request body too large (limit {app.config['MAX_CONTENT_LENGTH']:,} bytes)",
        }.get(exc.code, exc.description)
        if _wants_json():
            response = json_error(exc.code or 500, message)
            if exc.code == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return render_template("error.html", status=exc.code, message=message), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # A bug, not bad input: log it with the traceback, answer without leaking internals.
        log.exception("request.failed", extra={"fields": {"path": request.path, "method": request.method}})
        if _wants_json():
            return json_error(500, "internal error (see the daemon log)")
        return render_template("error.html", status=500, message="internal error (see the daemon log)"), 500
