"""JSON API under /api/v1. Every bad request gets a 4xx with {"error": ...}; never a 5xx.

POST /api/v1/predict        {"text": str, "id"?: uuid, "explain"?: bool, "advice"?: bool,
                             "skills"?: [str]}  -> the CLI --json object + "stored" (+ extras)
GET  /api/v1/predictions    ?limit=1..200&offset=0&label=0|1 -> {"items", "total", "limit", "offset"}
GET  /api/v1/status         model, manifest, database, uptime, sync, config (secrets redacted)
POST /api/v1/admin/prune    {"retention_days"?: int}  (Authorization: Bearer <[admin] token>)
POST /api/v1/admin/reload-model {"bundle"?: path}     (same token)
POST /api/v1/admin/rollback                            (same token) swap back to the previous OTA slot
"""

from __future__ import annotations

import json
import logging
import re
import uuid as uuid_module
from pathlib import Path

from flask import Blueprint, jsonify, request

from device.daemon import Busy, ModelUnavailable
from device.store import IdConflict, StoreWriteError
from device.web.context import config, daemon
from device.web.errors import ApiError
from device.web.security import bearer_matches
from shared.errors import UserError

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_PAGE = 200
MAX_OFFSET = 10**9
MAX_RETENTION_DAYS = 36_500  # a century; beyond it the cutoff date does not exist
MAX_BUNDLE_PATH = 4096
_ASCII_INTEGER = re.compile(r"-?[0-9]{1,19}\Z")


def _json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, f"Content-Type must be application/json, got {request.mimetype or 'none'!r}")
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        raise ApiError(400, 'empty request body; send a JSON object like {"text": "..."}')
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ApiError(400, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal over Python's 4,300-digit limit
        raise ApiError(400, f"invalid JSON: {str(exc)[:100]}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _optional_bool(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"field {key!r} must be true or false")
    return value


def _request_uuid(body: dict) -> str | None:
    value = body.get("id")
    if value is None:
        return None
    try:
        return str(uuid_module.UUID(str(value)))
    except ValueError:
        raise ApiError(400, "field 'id' must be a UUID (it makes retries idempotent)") from None


def _profile_skills(body: dict) -> list[str] | None:
    skills = body.get("skills")
    if skills is None:
        return None
    if isinstance(skills, str):
        return [skills]
    if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
        raise ApiError(400, "field 'skills' must be a list of strings")
    return skills


@bp.post("/predict")
def predict():
    body = _json_body()
    if "text" not in body:
        raise ApiError(400, "missing field 'text'")
    if not isinstance(body["text"], str):
        raise ApiError(400, f"field 'text' must be a string, got {type(body['text']).__name__}")
    try:
        result = daemon().classify(
            body["text"],
            source="api",
            uuid=_request_uuid(body),
            explain=_optional_bool(body, "explain"),
            with_advice=_optional_bool(body, "advice"),
            profile_skills=_profile_skills(body),
        )
    except IdConflict as exc:
        raise ApiError(409, str(exc)) from None
    except UserError as exc:
        raise ApiError(400, exc.format_message()) from None
    except ModelUnavailable as exc:
        raise ApiError(503, f"model not loaded: {exc.reason}", fix=exc.fix) from None
    except Busy as exc:
        raise ApiError(429, str(exc), retry_after_s=exc.retry_after_s) from None
    return jsonify(result.to_json())


def parse_bounded_int(raw: str, low: int, high: int) -> int | None:
    """ASCII digits within [low, high], else None ('²' and '٣' are digits to str.isdigit, not here)."""
    if not _ASCII_INTEGER.match(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = parse_bounded_int(raw, low, high)
    if value is None:
        raise ApiError(400, f"query parameter {name!r} must be an integer between {low} and {high}, got {raw[:40]!r}")
    return value


def label_filter(raw: str | None) -> int | None:
    if raw in (None, "", "all"):
        return None
    if raw in ("0", "1"):
        return int(raw)
    raise ApiError(400, f"label must be 0, 1 or all, got {raw!r}")


@bp.get("/predictions")
def predictions():
    store = daemon().store
    if store is None:
        raise ApiError(503, f"prediction store unavailable: {daemon().store_error}")
    limit = _int_arg("limit", 20, 1, MAX_PAGE)
    offset = _int_arg("offset", 0, 0, MAX_OFFSET)
    label = label_filter(request.args.get("label"))
    rows = store.recent(limit=limit, offset=offset, label=label)
    items = [{key: value for key, value in row.items() if key != "text"} for row in rows]
    return jsonify({"items": items, "total": store.count(label), "limit": limit, "offset": offset, "label": label})


@bp.get("/status")
def status():
    return jsonify(daemon().status())


def _require_admin() -> None:
    token = config().admin.token
    if not token:
        raise ApiError(403, "admin endpoints are disabled: set [admin] token in the config")
    if not bearer_matches([token]):
        log.warning("admin.denied", extra={"fields": {"path": request.path, "remote": request.remote_addr}})
        raise ApiError(401, "missing or wrong admin token (Authorization: Bearer <token>)")


def _optional_json_body() -> dict:
    return _json_body() if request.content_length or request.is_json else {}


@bp.post("/admin/prune")
def admin_prune():
    _require_admin()
    body = _optional_json_body()
    days = body.get("retention_days", config().store.retention_days)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_RETENTION_DAYS:
        raise ApiError(400, f"retention_days must be an integer between 0 and {MAX_RETENTION_DAYS}")
    store = daemon().store
    if store is None:
        raise ApiError(503, f"prediction store unavailable: {daemon().store_error}")
    try:
        deleted = store.prune(days)
    except StoreWriteError as exc:
        raise ApiError(507, str(exc)) from None
    log.info("admin.pruned", extra={"fields": {"deleted": deleted, "retention_days": days}})
    return jsonify(
        {"deleted": deleted, "retention_days": days, "rows": store.count(), "unsynced": store.count_unsynced()}
    )


@bp.post("/admin/reload-model")
def admin_reload_model():
    """Load a bundle without restarting (after a manual copy or a rollback)."""
    _require_admin()
    body = _optional_json_body()
    bundle = body.get("bundle")
    if bundle is not None and (not isinstance(bundle, str) or "\x00" in bundle or len(bundle) > MAX_BUNDLE_PATH):
        raise ApiError(400, f"bundle must be a path string (at most {MAX_BUNDLE_PATH} characters, no NUL)")
    target = Path(bundle) if bundle else daemon().bundle_dir
    if not daemon().load_model(target):
        raise ApiError(409, f"could not load {target}; still serving the previous model", model=daemon().model_info())
    return jsonify({"model": daemon().model_info()})


@bp.post("/admin/rollback")
def admin_rollback():
    """Switch the `active` slot back to `previous` (as `careeredge model rollback` does) and serve it."""
    from device.sync.slots import ModelSlots

    _require_admin()
    slots = ModelSlots(config().sync.models_dir)
    try:
        restored = slots.rollback()
    except UserError as exc:
        raise ApiError(409, str(exc)) from None
    log.warning("admin.rollback", extra={"fields": {"active": str(restored)}})
    if not daemon().load_model(slots.active_link):
        raise ApiError(
            409,
            f"rolled back the slots to {restored.name} but could not load it; still serving the previous model",
            model=daemon().model_info(),
        )
    return jsonify({"active_slot": restored.name, "model": daemon().model_info()})
