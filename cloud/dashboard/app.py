"""`create_app`: the dashboard over the report's monitoring JSON (and, optionally, the collector's store).

Pages: the answer (A vs B, week by week), skew per feature, rising and falling skills, the hypothesis
lists, field traffic (shadow agreement, device skew). `/api/monitoring.json` serves the document the
pages are rendered from, so a test can check every number shown against it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from flask import Flask, abort, jsonify, render_template

from cloud.dashboard import charts
from cloud.dashboard.highlight import highlighted_excerpt
from cloud.monitoring import study
from shared.labels import LABEL_NAMES

PAGES = (("overview", "/", "The answer"), ("skew", "/skew", "Skew"), ("skills", "/skills", "Skills"),
         ("hypotheses", "/hypotheses", "Hypotheses"), ("field", "/field", "Field"))  # fmt: skip


def accuracy_by_week_chart(rows: list[dict]) -> str:
    """The overview's chart (SVG): frozen A vs each week's B, on the 2026 split and the week's own slice."""
    return charts.line_chart(
        [r["week"] for r in rows],
        {
            "A, 2026 eval": [r["eval_2026_model_a"] for r in rows],
            "B, 2026 eval": [r["eval_2026_model_b"] for r in rows],
            "A, week slice": [r["week_slice_model_a"] for r in rows],
            "B, week slice": [r["week_slice_model_b"] for r in rows],
        },
        "Accuracy by week: frozen A vs that week's B",
        y_range=(0.5, 1.0),
    )


class DocumentSource:
    """The monitoring JSON, re-read when the file changes (a new report appears without a restart)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp = None
        self._document: dict = {}

    def get(self) -> dict:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return {}
        if stamp != self._stamp:
            try:
                self._document = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._document = {}
            self._stamp = stamp
        return self._document


def page_context(page: str, document: dict, monitoring_json: Path) -> dict:
    """What every page's template reads: the page list, the document, where it came from."""
    return {
        "page": page,
        "pages": PAGES,
        "document": document,
        "missing": not document,
        "path": str(monitoring_json),
        "labels": LABEL_NAMES,
    }


def overview_context(document: dict) -> dict:
    """The overview page's own figures (the served page and `report`'s static copy)."""
    rows = study.week_rows(document)
    return {
        "rows": rows,
        "headline": study.headline_accuracy(document),
        "accuracy_chart": accuracy_by_week_chart(rows) if rows else None,
        "movement": study.movement(document),
    }


def create_app(monitoring_json: Path, store_url: str | None = None, omit_text: bool = False) -> Flask:
    app = Flask(__name__)
    source = DocumentSource(monitoring_json)

    opened: list = []  # the collector's store, opened on first use and kept (a pool, for PostgreSQL)
    opening = threading.Lock()

    def live_count() -> int | None:
        if store_url is None:
            return None
        from cloud.collector.storage import open_storage

        try:  # the store being down must not take the page down; opening is tried again next time
            with opening:
                if not opened:
                    storage = open_storage(store_url, collector="dashboard")
                    storage.open()
                    opened.append(storage)
            return opened[0].prediction_count()
        except Exception:
            return None

    def render(page: str, **context):
        return render_template(f"{page}.html", **page_context(page, source.get(), monitoring_json), **context)

    @app.get("/")
    def overview():
        return render("overview", **overview_context(source.get()), live_predictions=live_count())

    @app.get("/skew")
    def skew():
        matrix = study.skew_matrix(source.get(), limit=40)
        return render("skew", matrix=matrix)

    @app.get("/skills")
    def skills():
        document = source.get()
        moved = study.movement(document)
        rows = [(r["skill"], r["change"], f"{r['count']} vs {r['baseline_count']} postings") for r in moved["rising"]]
        rows += [(r["skill"], r["change"], f"{r['count']} vs {r['baseline_count']} postings") for r in moved["falling"]]
        chart = charts.diverging_bars(rows, "Share of postings naming the skill: 2026 minus 2025") if rows else None
        weekly = (document.get("replay") or {}).get("skill_weeks") or {}
        return render("skills", movement=moved, chart=chart, weekly=weekly)

    @app.get("/hypotheses")
    def hypotheses():
        found = study.hypotheses(source.get())
        for kind in ("a_wrong_b_right", "b_wrong_a_right"):  # copies: the cached document stays as read
            found[kind] = [
                {**row, "excerpt": None if omit_text else highlighted_excerpt(row["text"], row["rising_skills"])}
                for row in found[kind]
            ]
        return render("hypotheses", found=found, omit_text=omit_text)

    @app.get("/field")
    def field():
        return render("field", field=study.field_summary(source.get()), live_predictions=live_count())

    @app.get("/api/monitoring.json")
    def document_json():
        document = source.get()
        if not document:
            abort(404, description=f"no monitoring JSON at {monitoring_json}; run `careeredge-cloud report`")
        return jsonify(document)

    @app.errorhandler(404)
    def not_found(error):
        return render("error", message=getattr(error, "description", "not found")), 404

    return app
