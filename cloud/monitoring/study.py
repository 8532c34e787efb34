"""The study as tables: what the report and the dashboard both show, read from the monitoring JSON.

`merge` builds the one document the report writes (`artifacts/reports/monitoring.json`) from the
weekly replay (`replay-weeks`), the job over logged predictions and streams (`monitor`) and Model B's
evaluation (`evaluate-b`). The functions below turn it into rows; a missing part gives no rows and a
note, never an error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import UserError

MODELS = ("model_a", "model_b")


def read_optional(path: Path | None) -> dict | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable monitoring JSON ({exc})") from None


def merge(weekly: dict | None, monitor: dict | None, evaluation: dict | None, commit: str | None = None) -> dict:
    return {
        "format": 1,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "replay": weekly,
        "monitor": monitor,
        "evaluation": evaluation,
    }


def week_rows(document: dict) -> list[dict]:
    """The per-week A vs B table: accuracy on the 2026 evaluation split, the week's own slice and
    the 2025 test split, the arm B used, the skew alerts, and what the week cost."""
    replay = document.get("replay") or {}
    rows = []
    for week in replay.get("weeks", []):
        ev, cost = week["evaluation"], week["cost"]
        row = {
            "week": week["week"],
            "arrived": week["arrived"],
            "arm": week["model_b"]["arm"],
            "alerts": len(week["monitoring"]["skew"]["summary"]["alerts"]),
            "drift_alerts": len((week["monitoring"]["drift"] or {}).get("summary", {}).get("alerts", [])),
            "wall_s": cost["wall_s"],
            "cpu_s": cost["cpu_s"],
            "peak_rss_mb": cost["peak_rss_mb"],
            "load": cost["load_avg_1m"],
        }
        for split in ("eval_2026", "week_slice", "test_2025"):
            row[f"{split}_n"] = ev[split]["model_a"]["n"]
            for model in MODELS:
                row[f"{split}_{model}"] = ev[split][model]["accuracy"]
        rows.append(row)
    return rows


def headline_accuracy(document: dict) -> dict:
    """A vs B, overall: from evaluate-b when present, else from the last replayed week."""
    evaluation = document.get("evaluation")
    if evaluation:
        return {
            "source": evaluation.get("model_b_name", "evaluate-b"),
            "test_2025": {m: evaluation["test_2025"]["overall"][m] for m in MODELS},
            "eval_2026": {m: evaluation["eval_2026"]["overall"][m] for m in MODELS},
        }
    weeks = (document.get("replay") or {}).get("weeks") or []
    if not weeks:
        return {}
    last = weeks[-1]
    return {
        "source": f"replay {last['week']}",
        "test_2025": last["evaluation"]["test_2025"],
        "eval_2026": last["evaluation"]["eval_2026"],
    }


def skew_matrix(document: dict, limit: int = 15) -> dict:
    """Features x weeks of skew (vs 2025), the features with the largest value in any week first."""
    weeks = (document.get("replay") or {}).get("weeks") or []
    values: dict[str, dict[str, float | None]] = {}
    thresholds: dict[str, float] = {}
    for week in weeks:
        for feature in week["monitoring"]["skew"]["features"]:
            values.setdefault(feature["feature"], {})[week["week"]] = feature["value"]
            thresholds[feature["feature"]] = feature["threshold"]

    def peak(name):
        return max((v / thresholds[name] for v in values[name].values() if v is not None), default=-1)

    features = sorted(values, key=peak, reverse=True)[:limit]
    return {
        "weeks": [w["week"] for w in weeks],
        "rows": [{"feature": f, "threshold": thresholds[f], "values": values[f]} for f in features],
    }


def movement(document: dict) -> dict:
    replay = document.get("replay") or {}
    if replay.get("movement_2026"):
        return {"source": "2026 job-radar stream (all replayed weeks) vs 2025 train", **replay["movement_2026"]}
    windows = ((document.get("monitor") or {}).get("stream") or {}).get("windows") or []
    if windows:
        return {"source": f"{windows[-1]['window']} vs 2025 train", **windows[-1]["movement"]}
    return {"rising": [], "falling": [], "source": "no 2026 data monitored yet"}


def hypotheses(document: dict) -> dict:
    found = (document.get("replay") or {}).get("hypotheses") or {}
    return {
        "counts": found.get("counts", {"a_wrong_b_right": 0, "b_wrong_a_right": 0}),
        "a_wrong_b_right": found.get("a_wrong_b_right", []),
        "b_wrong_a_right": found.get("b_wrong_a_right", []),
    }


def field_summary(document: dict) -> dict | None:
    return (document.get("monitor") or {}).get("field")
