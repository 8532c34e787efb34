"""`careeredge-cloud report`: the study in one place, under artifacts/reports/.

* `monitoring.json` - the weekly replay, the monitoring job and Model B's evaluation, merged
  (`cloud.monitoring.study.merge`); the dashboard reads this file;
* `accuracy_by_week.png`, `skew_by_week.png`, `skills_2025_2026.png`, `cost_by_week.png` - matplotlib;
* `report.html` - one self-contained page (inline CSS, SVG charts, no external request).

Every input is optional: a part that was not produced yet is left out and the page says so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import click

from cloud.artifacts import write_json_atomic
from cloud.monitoring import study
from shared.errors import UserError
from shared.files import atomic_write_text


def current_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def plot_all(document: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = study.week_rows(document)
    if rows:
        weeks = [r["week"][-3:] for r in rows]
        fig, ax = plt.subplots(figsize=(8, 4))
        for split, style in (("eval_2026", "-"), ("week_slice", "--")):
            for model, color in (("model_a", "#1f5fa8"), ("model_b", "#d9622b")):
                values = [r[f"{split}_{model}"] for r in rows]
                ax.plot(weeks, [v if v is not None else float("nan") for v in values], style, color=color,
                        marker="o", label=f"{'A' if model == 'model_a' else 'B'}, {split.replace('_', ' ')}")  # fmt: skip
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title("Frozen Model A vs each week's Model B")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        written.append(_save(fig, out_dir / "accuracy_by_week.png"))

        fig, ax = plt.subplots(figsize=(8, 3.5))
        steps = list(document["replay"]["weeks"][0]["cost"]["steps"])
        bottom = [0.0] * len(rows)
        for step in steps:
            values = [w["cost"]["steps"].get(step, {}).get("wall_s", 0) / 60 for w in document["replay"]["weeks"]]
            ax.bar(weeks, values, bottom=bottom, label=step)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.axhline(15, color="#b3401a", linestyle=":", label="weekly budget (15 min)")
        ax.set_ylabel("wall minutes")
        ax.set_title("What each week cost to run")
        ax.legend(fontsize=8, ncol=3)
        written.append(_save(fig, out_dir / "cost_by_week.png"))

    matrix = study.skew_matrix(document, limit=15)
    if matrix["rows"]:
        import numpy as np

        values = np.array(
            [
                [np.nan if row["values"].get(w) is None else row["values"][w] for w in matrix["weeks"]]
                for row in matrix["rows"]
            ]
        )
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(matrix["rows"]) + 1.5))
        image = ax.imshow(values, aspect="auto", cmap="Oranges", vmin=0, vmax=max(0.3, float(np.nanmax(values))))
        ax.set_xticks(range(len(matrix["weeks"])), [w[-3:] for w in matrix["weeks"]])
        ax.set_yticks(range(len(matrix["rows"])), [r["feature"] for r in matrix["rows"]], fontsize=8)
        for (i, j), value in np.ndenumerate(values):
            if not np.isnan(value):
                over = value >= matrix["rows"][i]["threshold"]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, fontweight="bold" if over else None)
        fig.colorbar(image, ax=ax, label="distance (bold: at or over threshold)")
        ax.set_title("Skew vs 2025 training split, per week")
        written.append(_save(fig, out_dir / "skew_by_week.png"))

    moved = study.movement(document)
    bars = moved["rising"][:8] + moved["falling"][:5]
    if bars:
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(bars) + 1.5))
        names = [r["skill"] for r in bars][::-1]
        changes = [100 * r["change"] for r in bars][::-1]
        ax.barh(names, changes, color=["#1f5fa8" if c > 0 else "#d9622b" for c in changes])
        for i, row in enumerate(bars[::-1]):
            ax.text(0, i, f"  {row['count']} vs {row['baseline_count']}", va="center", fontsize=7)
        ax.axvline(0, color="#555")
        ax.set_xlabel("share of postings naming the skill, 2026 minus 2025 (points)")
        ax.set_title("Rising and falling skills (counts: 2026 vs 2025 postings)")
        written.append(_save(fig, out_dir / "skills_2025_2026.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_html(document: dict, monitoring_json: Path) -> str:
    """The overview page of the dashboard, rendered once with its CSS inlined (no server needed)."""
    from cloud.dashboard.app import create_app

    app = create_app(monitoring_json)
    css = (Path(app.static_folder) / "style.css").read_text(encoding="utf-8")
    with app.test_request_context("/"):
        from flask import render_template

        from cloud.dashboard.app import overview_context, page_context

        return render_template(
            "overview.html",
            **page_context("overview", document, monitoring_json),
            **overview_context(document),
            inline_css=css,
            live_predictions=None,
        )


@click.command("report")
@click.option(
    "--weekly", type=click.Path(path_type=Path), default=Path("artifacts/monitoring/weekly.json"), show_default=True
)
@click.option(
    "--monitor", "monitor_file", type=click.Path(path_type=Path), default=Path("artifacts/monitoring/field.json"),
    show_default=True,
)  # fmt: skip
@click.option("--without-replay", is_flag=True, help="Leave the weekly replay out (the DVC stage: not in a clone).")
@click.option("--evaluation", type=click.Path(path_type=Path), default=None, help="A model_b_vN/evaluation.json.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("artifacts/reports"), show_default=True)
def report_command(weekly, without_replay, monitor_file, evaluation, out_dir) -> None:
    """Merge the monitoring outputs into monitoring.json, plot them, and write one HTML page."""
    weekly_part = None if without_replay else study.read_optional(weekly)
    parts = {"weekly": weekly_part, "monitor": study.read_optional(monitor_file)}
    parts["evaluation"] = study.read_optional(evaluation)
    if not any(parts.values()):
        raise UserError(
            f"nothing to report: none of {weekly}, {monitor_file}"
            + (f", {evaluation}" if evaluation else "")
            + " exists (run `careeredge-cloud replay-weeks` or `monitor` first)"
        )
    document = study.merge(parts["weekly"], parts["monitor"], parts["evaluation"], current_commit())
    out_dir.mkdir(parents=True, exist_ok=True)
    monitoring_json = out_dir / "monitoring.json"
    write_json_atomic(monitoring_json, document)
    plots = plot_all(document, out_dir)
    atomic_write_text(out_dir / "report.html", render_html(document, monitoring_json))
    present = ", ".join(name for name, part in parts.items() if part) or "nothing"
    click.echo(f"report: {present} -> {monitoring_json}, {len(plots)} plots, {out_dir / 'report.html'}")
