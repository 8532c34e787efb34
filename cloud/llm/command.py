"""`careeredge-cloud compare-llm`: the LLM arm and the small models on the same postings.

Splits: the 2025 test split (`data/processed/splits/test.csv`) and the 2026 evaluation split (held out from
the 2026 stream by `cloud.training.stream_split`, labelled by the title taxonomy), the ones Model A and Model B
are scored on. Written to one JSON file (`artifacts/llm/compare.json`):

* `small_models`: each INT8 bundle run through the device runtime: accuracy and one-posting latency;
* `token_counts`: for every model in the price table, the prompt and answer tokens of every posting, counted
  offline (the model's own tokenizer when a package ships it, else an estimate, labelled);
* `llm`: with an endpoint configured, every posting's outcome, tokens (from `usage`), latency and cost;
  without one, `{"status": "not measured"}` and why. No accuracy is ever filled in for a model not called.
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click

from cloud.artifacts import write_json_atomic
from cloud.cli_options import normalized_option, params_option, splits_option
from cloud.costs.prices import DEFAULT_PRICES, ModelPrice, load_prices
from cloud.llm.client import ENV_API_KEY, ENV_BASE_URL, ChatClient, Endpoint
from cloud.llm.prompt import DEFAULT_PROMPT, Prompt, load_prompt
from cloud.llm.runner import REFERENCE_ANSWER, LabelledPosting, classify_postings, outcome_records
from cloud.llm.tokens import TokenCounter
from cloud.params import load_params
from shared.errors import UserError

SCHEMA = "careeredge.compare_llm/1"
TEST_2025 = "test_2025"
EVAL_2026 = "eval_2026"


def read_test_split(path: Path) -> list[LabelledPosting]:
    """The 2025 test split with its posting ids (`label` writes id, title, text, label)."""
    if not path.is_file():
        raise UserError(f"split not found: {path} (run `careeredge-cloud label` first)")
    with path.open(encoding="utf-8", newline="") as handle:
        return [LabelledPosting(row["id"], row["text"], int(row["label"])) for row in csv.DictReader(handle)]


def read_eval_2026(normalized: Path, eval_fraction: float) -> list[LabelledPosting]:
    from cloud.ingest.normalized import load_postings
    from cloud.training.stream_split import split_stream

    stream = split_stream(load_postings(normalized), eval_fraction)
    return [
        LabelledPosting(p.source_id, p.description, label) for p, label in zip(stream.evaluation, stream.eval_labels)
    ]


def score_bundle(bundle: Path, splits: dict[str, list[LabelledPosting]], threads: int | None) -> dict:
    """Accuracy in length-sorted batches (as the device runs a queue) and the p50 of one-posting calls."""
    from device.runtime import load_backend

    backend = load_backend(bundle, threads=threads)
    result = {"name": backend.model_version, "bundle": str(bundle), "splits": {}}
    for split, postings in splits.items():
        predictions = backend.predict([p.text for p in postings])
        correct = sum(pred.label == p.label for pred, p in zip(predictions, postings))
        latencies = []
        for posting in postings:
            began = time.perf_counter()
            backend.predict([posting.text])
            latencies.append((time.perf_counter() - began) * 1000)
        result["splits"][split] = {
            "postings": len(postings),
            "correct": correct,
            "accuracy": correct / len(postings) if postings else None,
            "latency_ms_p50": statistics.median(latencies) if latencies else None,
        }
    return result


def count_tokens(prompt: Prompt, prices: dict[str, ModelPrice], splits: dict[str, list[LabelledPosting]]) -> dict:
    """Every posting's prompt and answer tokens for every priced model, offline."""
    counts = {}
    for model_id, price in prices.items():
        counter = TokenCounter(price.tokenizer, price.tokenizer_is_models_own, price.token_factor)
        per_split = {}
        for split, postings in splits.items():
            counted = [counter.count(prompt.messages(p.text), REFERENCE_ANSWER) for p in postings]
            per_split[split] = {
                "prompt_tokens": [c.prompt_tokens for c in counted],
                "completion_tokens": [c.completion_tokens for c in counted],
            }
        counts[model_id] = {"method": counter.method, "estimate": not counter.exact, "splits": per_split}
    return counts


def llm_configured(base_url: str | None) -> bool:
    return bool(base_url or os.environ.get(ENV_BASE_URL, "").strip() or os.environ.get(ENV_API_KEY, "").strip())


@click.command("compare-llm")
@splits_option()
@normalized_option()
@click.option(
    "--bundle",
    "bundles",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="INT8 bundle to score on the same postings (repeatable; Model A's and Model B's).",
)
@click.option("--prices", type=click.Path(path_type=Path), default=DEFAULT_PRICES, show_default=True)
@click.option("--prompt", "prompt_path", type=click.Path(path_type=Path), default=DEFAULT_PROMPT, show_default=True)
@click.option("--base-url", default=None, help=f"OpenAI-compatible API base URL [env {ENV_BASE_URL}].")
@click.option("--model", default=None, help="Model name the API knows [env CAREEREDGE_LLM_MODEL].")
@click.option("--price-id", default=None, help="Price-table row of that model [default: the model name].")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None, help="Calls in flight [params].")
@click.option("--max-cost-usd", type=click.FloatRange(min=0), default=None, help="Stop sending past this [params].")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=60.0, show_default=True)
@click.option("--max-retries", type=click.IntRange(0, 10), default=4, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N postings of each split.")
@click.option("--threads", type=int, default=None, help="ONNX Runtime threads for the bundles.")
@params_option()
@click.option("--out", type=click.Path(path_type=Path), default=Path("artifacts/llm/compare.json"), show_default=True)
def compare_llm_command(
    splits, normalized, bundles, prices, prompt_path, base_url, model, price_id, concurrency, max_cost_usd,
    timeout_s, max_retries, limit, threads, params_path, out,
) -> None:  # fmt: skip
    """Score an LLM (when configured) and the INT8 bundles on the 2025 test and 2026 evaluation splits."""
    params = load_params(params_path)
    settings = params.get("compare_llm", {})
    concurrency = concurrency or int(settings.get("concurrency", 4))
    max_cost_usd = max_cost_usd if max_cost_usd is not None else settings.get("max_cost_usd")
    eval_fraction = float(params.get("pseudo_label", {}).get("eval_fraction", 0.3))

    table = load_prices(prices)
    prompt = load_prompt(prompt_path)
    data = {TEST_2025: read_test_split(splits / "test.csv"), EVAL_2026: read_eval_2026(normalized, eval_fraction)}
    if limit:
        data = {split: postings[:limit] for split, postings in data.items()}
    endpoint = None
    if llm_configured(base_url):  # a half-configured endpoint (no key, no model) is an error, not a skip
        endpoint = Endpoint.from_environment(base_url, model, timeout_s=timeout_s, max_retries=max_retries)
        price_id = price_id or endpoint.model
        if price_id not in table:
            raise UserError(f"model {price_id!r} has no row in {prices}; add one or pass --price-id")

    report = {
        "schema": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "prompt": prompt.describe(),
        "prices": {model_id: price.to_json() for model_id, price in table.items()},
        "splits": {split: {"postings": len(postings)} for split, postings in data.items()},
        "small_models": [score_bundle(bundle, data, threads) for bundle in bundles],
        "token_counts": count_tokens(prompt, table, data),
        "llm": {
            "status": "not measured",
            "why": f"no LLM endpoint configured (set {ENV_BASE_URL}, CAREEREDGE_LLM_MODEL and {ENV_API_KEY})",
        },
    }
    if endpoint is not None:
        report["llm"] = run_llm(endpoint, table[price_id], prompt, data, concurrency, max_cost_usd)
    write_json_atomic(out, report)
    _print_summary(report, out)


def run_llm(endpoint: Endpoint, price: ModelPrice, prompt: Prompt, data: dict, concurrency: int, max_cost_usd) -> dict:
    client = ChatClient(endpoint)
    counter = TokenCounter(price.tokenizer, price.tokenizer_is_models_own, price.token_factor)
    result = {
        "status": "measured",
        "model": endpoint.model,
        "base_url": endpoint.base_url,
        "price_id": price.id,
        "max_cost_usd": max_cost_usd,
        "splits": {},
    }
    budget = max_cost_usd
    for split, postings in data.items():
        outcomes, summary = classify_postings(
            client, prompt, postings, price, counter, concurrency, budget, progress=f"{endpoint.model} {split}"
        )
        if budget is not None:
            budget = max(0.0, budget - summary.cost_usd)
        result["splits"][split] = {"summary": asdict(summary), "outcomes": outcome_records(outcomes)}
    return result


def _print_summary(report: dict, out: Path) -> None:
    click.echo(f"compare-llm: {out}")
    for model in report["small_models"]:
        figures = ", ".join(f"{s} {v['accuracy']:.3f} (n={v['postings']})" for s, v in model["splits"].items())
        click.echo(f"  {model['name']:<28} {figures}")
    llm = report["llm"]
    if llm["status"] != "measured":
        click.echo(f"  LLM: not measured ({llm['why']})")
        return
    for split, run in llm["splits"].items():
        s = run["summary"]
        accuracy = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
        click.echo(
            f"  {llm['model']:<28} {split} {accuracy} (sent {s['sent']}, unparseable {s['unparseable']}, "
            f"failed {sum(s['failed'].values())}, skipped {s['skipped_cost_cap']}, ${s['cost_usd']:.4f})"
        )
