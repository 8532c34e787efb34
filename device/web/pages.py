"""Server-rendered pages: classify, history, status. Plain HTML forms, so they work without
JavaScript on any phone; Jinja autoescaping means pasted markup is shown as text, never run."""

from __future__ import annotations

import json
import math

from flask import Blueprint, render_template, request

from device.daemon import Busy, Classification, ModelUnavailable
from device.web.api import MAX_OFFSET, label_filter, parse_bounded_int
from device.web.context import config, daemon
from device.web.errors import ApiError
from shared.errors import UserError
from shared.labels import LABEL_NAMES

bp = Blueprint("pages", __name__)

HISTORY_PAGE_SIZE = 20


@bp.app_context_processor
def shared_context():
    return {"daemon": daemon(), "label_names": LABEL_NAMES}


def highlighted_segments(result: Classification) -> list[dict]:
    """Split the cleaned posting into plain runs and skill mentions; driving terms flagged.

    The template renders each segment as escaped text inside <mark> or plain, so highlighting
    never builds HTML out of user input.
    """
    weights = {term.lower(): weight for term, weight in (result.driving_terms or [])}
    text, segments, cursor = result.cleaned_text, [], 0
    for match in result.skill_matches:
        if match.start > cursor:
            segments.append({"text": text[cursor : match.start]})
        weight = weights.get(match.name.lower(), weights.get(match.alias.lower()))
        segments.append(
            {"text": text[match.start : match.end], "skill": match.name, "driver": weight is not None, "weight": weight}
        )
        cursor = match.end
    if cursor < len(text):
        segments.append({"text": text[cursor:]})
    return segments


@bp.route("/", methods=["GET", "POST"])
def classify():
    profile = ", ".join(config().profile.skills)
    if request.method == "GET":
        return render_template("classify.html", text="", skills=profile)
    text = request.form.get("text", "")
    skills = request.form.get("skills", profile)
    try:
        result = daemon().classify(text, source="web", explain=True, with_advice=True, profile_skills=[skills])
    except UserError as exc:
        return render_template("classify.html", text=text, skills=skills, error=exc.format_message()), 400
    except ModelUnavailable as exc:
        return render_template("classify.html", text=text, skills=skills, error=f"No model loaded: {exc.reason}"), 503
    except Busy as exc:
        return render_template("classify.html", text=text, skills=skills, error=f"Busy: {exc}"), 429
    return render_template(
        "classify.html", text=text, skills=skills, result=result, segments=highlighted_segments(result)
    )


@bp.get("/history")
def history():
    store = daemon().store
    try:
        label = label_filter(request.args.get("label"))
    except ApiError as exc:
        return render_template("error.html", status=400, message=exc.message), 400
    page = parse_bounded_int(request.args.get("page") or "1", 1, MAX_OFFSET)
    if page is None:
        return render_template("error.html", status=400, message="page must be a positive integer"), 400
    if store is None:
        return render_template(
            "history.html", rows=[], total=0, page=1, pages=1, label=label, error=daemon().store_error
        )
    total = store.count(label)
    pages = max(1, math.ceil(total / HISTORY_PAGE_SIZE))
    page = min(page, pages)
    rows = store.recent(limit=HISTORY_PAGE_SIZE, offset=(page - 1) * HISTORY_PAGE_SIZE, label=label)
    return render_template("history.html", rows=rows, total=total, page=page, pages=pages, label=label)


@bp.get("/status")
def status():
    info = daemon().status()
    return render_template(
        "status.html",
        info=info,
        manifest_json=json.dumps(info["manifest"], indent=2) if info["manifest"] else None,
        config_json=json.dumps(info["config"], indent=2),
    )
