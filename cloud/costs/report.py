"""`careeredge-cloud report-slm-llm`: small fine-tuned model vs LLM APIs, accuracy and cost, as JSON, HTML and
two plots under `artifacts/reports/slm_llm/`.

It reads what was measured elsewhere and computes nothing it cannot trace: accuracy and token counts from
`compare-llm`, time per posting and throughput from the benches, snapshot sizes from the files on disk, the
retrain time (a recorded measurement: the pipeline does not time its stages), prices and assumptions from
the YAML files.
An LLM's accuracy appears only when `compare-llm` called that model; otherwise it is "not measured".
"""

from __future__ import annotations

import csv
import html
from datetime import UTC, datetime
from pathlib import Path

import click

from cloud.artifacts import read_json, write_json_atomic
from cloud.cli_options import splits_option
from cloud.costs import model as cost_model
from cloud.costs.inputs import (
    DEFAULT_DEPLOYMENT,
    bench_inputs,
    directory_bytes,
    load_deployment,
    params_inputs,
    record_bytes,
)
from cloud.costs.prices import ModelPrice
from cloud.params import load_params
from shared.errors import UserError

SPLIT_LABELS = {"test_2025": "2025 test", "eval_2026": "2026 eval"}
NOT_MEASURED = "not measured"


def llm_costs(compare: dict) -> dict[str, cost_model.LlmCost]:
    """Per-call cost of every priced model over every posting of both splits: the API's usage for the model
    compare-llm called, the offline token counts for the others."""
    costs = {}
    llm = compare["llm"]
    for model_id, counts in compare["token_counts"].items():
        price = ModelPrice(**compare["prices"][model_id])
        prompt, completion = [], []
        method, estimate = counts["method"], counts["estimate"]
        measured = llm.get("status") == "measured" and llm.get("price_id") == model_id
        for split, split_counts in counts["splits"].items():
            if measured:
                outcomes = [o for o in llm["splits"][split]["outcomes"] if o.get("prompt_tokens") is not None]
                prompt += [o["prompt_tokens"] for o in outcomes]
                completion += [o["completion_tokens"] or 0 for o in outcomes]
            else:
                prompt += split_counts["prompt_tokens"]
                completion += split_counts["completion_tokens"]
        if measured:
            method, estimate = "API usage (measured calls)", False
        costs[model_id] = cost_model.llm_cost(model_id, price, prompt, completion, method, estimate)
    return costs


def llm_accuracy(compare: dict, model_id: str) -> dict[str, float | str]:
    llm = compare["llm"]
    if llm.get("status") != "measured" or llm.get("price_id") != model_id:
        return dict.fromkeys(SPLIT_LABELS, NOT_MEASURED)
    return {split: run["summary"]["accuracy"] for split, run in llm["splits"].items()}


def build_report(compare: dict, inputs: dict[str, cost_model.Input], settings: dict) -> dict:
    monitoring = inputs["monitoring_bytes_per_prediction"].value / cost_model.BYTES_PER_GB
    monitoring *= inputs["monitoring_usd_per_gb"].value
    deployments = [
        cost_model.pi5_deployment(inputs, inputs["seconds_per_prediction"].value, monitoring),
        cost_model.cloud_cpu_deployment(inputs, inputs["daemon_predictions_per_second"].value, monitoring),
    ]
    overhead = cost_model.monthly_overhead(inputs)
    overhead_total = sum(overhead.values())
    llm_overhead = inputs["llm_engineer_hours_per_month"].value * inputs["engineer_usd_per_hour"].value
    llms = llm_costs(compare)
    volume = float(settings["headline_volume_per_month"])

    small_rows = []
    for small in compare["small_models"]:
        for deployment in deployments:
            small_rows.append(
                {
                    "model": small["name"],
                    "deployment": deployment.name,
                    "accuracy": {s: small["splits"][s]["accuracy"] for s in SPLIT_LABELS if s in small["splits"]},
                    "usd_per_1000_compute_at_capacity": deployment.per_1000_at_capacity(),
                    "usd_per_1000_all_in_at_headline_volume": 1000
                    * deployment.monthly_usd(volume, overhead_total)
                    / volume,
                    "units_at_headline_volume": deployment.units(volume),
                }
            )
    llm_rows = []
    for model_id, cost in llms.items():
        per_call = cost.mean_usd
        llm_rows.append(
            {
                "model": model_id,
                "deployment": "API",
                "accuracy": llm_accuracy(compare, model_id),
                "usd_per_1000": cost.per_1000(),
                "usd_per_1000_all_in_at_headline_volume": 1000 * (per_call * volume + llm_overhead) / volume,
                "tokens": cost.method + (" (estimate)" if cost.estimate else ""),
                "break_even_volume_per_month": {
                    d.name: cost_model.break_even_volume(d, overhead_total, per_call, llm_overhead) for d in deployments
                },
            }
        )
    rate = inputs["engineer_usd_per_hour"].value
    hours = inputs["engineer_hours_per_month"].value
    sensitivity = {
        f"{h:g}": {
            row["model"]: {
                d.name: cost_model.break_even_volume(
                    d, overhead_total + (h - hours) * rate, llms[row["model"]].mean_usd, llm_overhead
                )
                for d in deployments
            }
            for row in llm_rows
        }
        for h in sorted({0.0, 1.0, hours, 16.0})
    }
    return {
        "schema": "careeredge.report_slm_llm/1",
        "break_even_by_engineer_hours": sensitivity,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "headline_volume_per_month": volume,
        "compare": {"created_at": compare["created_at"], "prompt": compare["prompt"], "splits": compare["splits"]},
        "llm_status": compare["llm"]["status"]
        + ("" if compare["llm"]["status"] == "measured" else f": {compare['llm']['why']}"),
        "small_model_rows": small_rows,
        "llm_rows": llm_rows,
        "overhead_usd_per_month": overhead,
        "llm_overhead_usd_per_month": llm_overhead,
        "deployments": [d.__dict__ for d in deployments],
        "monitoring_usd_per_prediction": monitoring,
        "inputs": cost_model.inputs_table(inputs),
        "prices": compare["prices"],
        "curves": cost_curves(deployments, overhead_total, llms, llm_overhead, settings["volumes_per_month"]),
    }


def cost_curves(deployments, overhead_total, llms, llm_overhead, volumes) -> dict:
    return {
        "volumes": list(volumes),
        "small": {d.name: [d.monthly_usd(v, overhead_total) for v in volumes] for d in deployments},
        "llm": {m: [c.mean_usd * v + llm_overhead for v in volumes] for m, c in llms.items()},
    }


# --- outputs -----------------------------------------------------------------------------------


def plot_costs(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    curves = report["curves"]
    volumes = np.logspace(np.log10(min(curves["volumes"])), np.log10(max(curves["volumes"])), 200)
    deployments = [cost_model.Deployment(**d) for d in report["deployments"]]
    overhead = sum(report["overhead_usd_per_month"].values())
    fig, ax = plt.subplots(figsize=(8, 5))
    for deployment, style in zip(deployments, ("-", "--")):
        costs = [deployment.monthly_usd(v, overhead) for v in volumes]
        ax.plot(volumes, costs, style, color="black", label=f"small model on {deployment.name} + MLOps")
    for row in report["llm_rows"]:
        per_call = row["usd_per_1000"]["mean"] / 1000
        ax.plot(volumes, per_call * volumes + report["llm_overhead_usd_per_month"], label=f"{row['model']} (API)")
        for break_even in row["break_even_volume_per_month"].values():
            if break_even:
                ax.plot([break_even], [per_call * break_even], "o", color="grey", markersize=4)
    ax.set(xscale="log", yscale="log", xlabel="predictions per month", ylabel="USD per month")
    ax.set_title("Monthly cost vs volume (dots: break-even)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "cost_vs_volume.png", dpi=120)
    plt.close(fig)


def plot_accuracy(report: dict, out: Path) -> None:
    """Each small model twice (filled: all-in at the headline volume; hollow: compute only, devices busy), joined
    by a line; each LLM at its mean cost, as a point when its accuracy was measured, else a labelled line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    markers = {"Raspberry Pi 5": "o", "cloud CPU (2 vCPU)": "s"}
    colours = {}
    for row in report["small_model_rows"]:
        accuracy = row["accuracy"].get("eval_2026")
        if not isinstance(accuracy, float):
            continue
        colour = colours.setdefault(row["model"], f"C{len(colours)}")
        costs = [row["usd_per_1000_compute_at_capacity"], row["usd_per_1000_all_in_at_headline_volume"]]
        marker = markers.get(row["deployment"], "o")
        ax.plot(costs, [accuracy, accuracy], "-", color=colour, alpha=0.4)
        ax.plot(costs[0], accuracy, marker, color=colour, markerfacecolor="none")
        ax.plot(costs[1], accuracy, marker, color=colour, label=f"{row['model']} on {row['deployment']}")
    for row in report["llm_rows"]:
        cost, accuracy = row["usd_per_1000"]["mean"], row["accuracy"]["eval_2026"]
        if isinstance(accuracy, float):
            ax.plot(cost, accuracy, "^", color="black", label=f"{row['model']} (API)")
        else:
            ax.axvline(cost, linestyle=":", color="grey")
            ax.text(cost, 0.47, f" {row['model']}: accuracy {NOT_MEASURED}", rotation=90, fontsize=7, va="bottom")
    volume = int(report["headline_volume_per_month"])
    ax.set(xscale="log", ylim=(0.45, 1.0), ylabel="accuracy on the 2026 evaluation split")
    ax.set(xlabel=f"USD per 1,000 predictions (hollow: compute only; filled: all-in at {volume:,}/month)")
    ax.set_title("Accuracy vs cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_cost.png", dpi=120)
    plt.close(fig)


def headline_rows(report: dict) -> list[list[str]]:
    """The README table: model, where, accuracy (2025 test / 2026 eval), USD per 1,000, break-even."""

    def accuracy(values: dict) -> str:
        return " / ".join(v if isinstance(v, str) else f"{v:.3f}" for v in (values.get(s, "n/a") for s in SPLIT_LABELS))

    rows = []
    for row in report["small_model_rows"]:
        rows.append(
            [
                row["model"],
                row["deployment"],
                accuracy(row["accuracy"]),
                f"${row['usd_per_1000_compute_at_capacity']:.4f} compute; "
                f"${row['usd_per_1000_all_in_at_headline_volume']:.3f} all-in",
                "",
            ]
        )
    for row in report["llm_rows"]:
        break_even = "; ".join(
            f"{name}: {'never' if v is None else f'{v:,.0f}/month'}"
            for name, v in row["break_even_volume_per_month"].items()
        )
        cost = row["usd_per_1000"]
        rows.append(
            [
                row["model"],
                f"API, tokens: {row['tokens']}",
                accuracy(row["accuracy"]),
                f"${cost['mean']:.3f} mean (p50 {cost['p50']:.3f}, p99 {cost['p99']:.3f})",
                break_even,
            ]
        )
    return rows


HEADLINE_HEADER = [
    "model",
    "where",
    "accuracy 2025 test / 2026 eval",
    "USD per 1,000 predictions",
    "small model cheaper from",
]


def markdown_table(report: dict) -> str:
    lines = ["| " + " | ".join(HEADLINE_HEADER) + " |", "|" + "---|" * len(HEADLINE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in headline_rows(report)]
    return "\n".join(lines)


def write_html(report: dict, out: Path) -> None:
    def table(header: list[str], rows: list[list]) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    inputs = [[i["name"], f"{i['value']:.6g}", i["unit"], i["kind"], i["source"]] for i in report["inputs"]]
    overhead = [[k, f"${v:,.2f}"] for k, v in report["overhead_usd_per_month"].items()]
    names = [d["name"] for d in report["deployments"]]
    sensitivity = [
        [hours, model, *("never" if by[n] is None else f"{by[n]:,.0f}" for n in names)]
        for hours, models in report["break_even_by_engineer_hours"].items()
        for model, by in models.items()
    ]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Small model vs LLM: accuracy and cost</title>
<style>body{{font-family:sans-serif;max-width:72em;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}img{{max-width:100%}}</style></head>
<body><h1>Small fine-tuned model vs LLM APIs</h1>
<p>Generated {html.escape(report["created_at"])} from compare-llm of {html.escape(report["compare"]["created_at"])}
(prompt {html.escape(report["compare"]["prompt"]["name"])}). LLM arm: {html.escape(report["llm_status"])}.
Headline volume: {report["headline_volume_per_month"]:,.0f} predictions per month.</p>
{table(HEADLINE_HEADER, headline_rows(report))}
<h2>Cost vs volume</h2><img src="cost_vs_volume.png" alt="monthly cost against monthly volume">
<h2>Accuracy vs cost</h2><img src="accuracy_vs_cost.png" alt="accuracy against cost per 1,000 predictions">
<h2>MLOps overhead of the small model (per month)</h2>{table(["item", "USD"], overhead)}
<h2>Break-even volume (predictions per month) by the small model's engineer hours per month</h2>
{table(["engineer hours", "LLM", *names], sensitivity)}
<h2>Every input</h2>{table(["input", "value", "unit", "kind", "source"], inputs)}
</body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")


def read_texts(split_csv: Path) -> list[str]:
    if not split_csv.is_file():
        raise UserError(f"split not found: {split_csv} (run `careeredge-cloud label` first)")
    with split_csv.open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


@click.command("report-slm-llm")
@click.option(
    "--compare", type=click.Path(path_type=Path), default=Path("artifacts/llm/compare.json"), show_default=True
)
@click.option(
    "--bench-inference",
    type=click.Path(path_type=Path),
    default=Path("artifacts/bench/inference.json"),
    show_default=True,
)
@click.option(
    "--bench-daemon", type=click.Path(path_type=Path), default=Path("artifacts/bench/daemon.json"), show_default=True
)
@click.option(
    "--snapshot",
    "snapshots",
    multiple=True,
    type=click.Path(path_type=Path),
    required=True,
    help="A path one weekly snapshot stores in the DVC remote (repeatable).",
)
@splits_option()
@click.option("--deployment", type=click.Path(path_type=Path), default=DEFAULT_DEPLOYMENT, show_default=True)
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("artifacts/reports/slm_llm"),
    show_default=True,
)
def report_command(compare, bench_inference, bench_daemon, snapshots, splits, deployment, params_path, out):
    """Accuracy and cost per 1,000 predictions, small model vs LLMs, with break-even volumes (HTML, PNG, JSON)."""
    settings = load_params(params_path).get("report_slm_llm")
    if not isinstance(settings, dict):
        raise UserError(f"{params_path}: no report_slm_llm section")
    compare_report = read_json(compare, "run `careeredge-cloud compare-llm` first")
    inputs = load_deployment(deployment)
    inputs.update(params_inputs(settings, params_path))
    measured, _ = bench_inputs(bench_inference, bench_daemon)
    inputs.update(measured)
    inputs["snapshot_bytes_per_week"] = directory_bytes(list(snapshots))
    inputs["monitoring_bytes_per_prediction"] = record_bytes(read_texts(splits / "test.csv"))

    report = build_report(compare_report, inputs, settings)
    out.mkdir(parents=True, exist_ok=True)
    plot_costs(report, out)
    plot_accuracy(report, out)
    write_html(report, out)
    report["headline_markdown"] = markdown_table(report)
    write_json_atomic(out / "report.json", report)
    click.echo(f"report-slm-llm: {out}/report.html")
    click.echo(report["headline_markdown"])
