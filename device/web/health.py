"""GET /healthz: model version and database state. 200 when it can classify, 503 when degraded."""

from __future__ import annotations

from flask import Blueprint, jsonify

from device.web.context import daemon

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    body, healthy = daemon().health()
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
