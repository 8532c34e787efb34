#!/usr/bin/env python
"""What a device pays to read postings with each bundle, and with more windows (`shared.reading`).

    python scripts/bench_reading.py --bundle artifacts/bundles/model_b_v4 --json artifacts/bench/reading.json
    python scripts/bench_reading.py --bundle artifacts/bundles/model_a_v1 --bundle artifacts/bundles/model_b_v4 \
        --windows 1 --json artifacts/bench/device_models.json

INT8 bundles, one process, the 2026 evaluation postings (taxonomy-labelled, as evaluate-b scores them).
Every (bundle, window count) pair reads every posting (window counts: 1 .. each bundle's own `windows`,
or --windows); the pairs take turns posting by posting, rotating who goes first, so machine noise hits
them alike. Figures are medians: per-posting latency at batch 1 (p50/p95), throughput at batch 16, the
windows actually read per posting, accuracy on the split, and each latency as a ratio to the first pair.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cloud.cli_options import normalized_option, params_option  # noqa: E402

BATCH = 16
WARMUP = 3


@click.command()
@click.option(
    "--bundle",
    "bundles",
    type=click.Path(path_type=Path),
    required=True,
    multiple=True,
    help="A bundle to read with (repeat to compare; the first is the baseline of the ratios).",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), required=True, help="Write figures here.")
@normalized_option()
@params_option()
@click.option(
    "--windows",
    "window_counts",
    type=int,
    multiple=True,
    help="Window counts to compare [default: 1 .. each bundle's windows].",
)
@click.option("--threads", default=2, show_default=True)
@click.option("--limit", default=0, help="Only the first N postings for latency (0 = all).")
def main(bundles, json_out, normalized, params_path, window_counts, threads, limit) -> None:
    from cloud.ingest.normalized import load_postings
    from cloud.params import load_params
    from cloud.training.pseudo_label import pseudo_label_settings
    from cloud.training.stream_split import split_stream
    from device.runtime import load_backend
    from shared.reading import check_windows
    from shared.text import model_input

    stream = split_stream(load_postings(normalized), pseudo_label_settings(load_params(params_path))["eval_fraction"])
    labels = np.asarray(stream.eval_labels)
    pairs = {}  # "bundle name, N window(s)" -> (backend, windows, model inputs)
    for bundle in bundles:
        backend = load_backend(bundle, threads=threads)
        inputs = [model_input(p.description, backend.preprocessing) for p in stream.evaluation]
        for windows in sorted({check_windows(n) for n in window_counts} or range(1, backend.windows + 1)):
            pairs[f"{bundle.name}, {windows} window{'s' if windows > 1 else ''}"] = (backend, windows, inputs)

    def read_with(name: str, texts: list[str] | None = None):
        backend, windows, inputs = pairs[name]
        backend.windows = windows
        return backend.predict_model_inputs(inputs if texts is None else texts)

    names = list(pairs)
    for name in names:
        read_with(name, pairs[name][2][:WARMUP])
    timed = len(stream.evaluation[:limit] if limit else stream.evaluation)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for i in range(timed):
        for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate who goes first
            text = [pairs[name][2][i]]
            began = time.perf_counter()
            read_with(name, text)
            latencies[name].append((time.perf_counter() - began) * 1000)
    figures = {
        "bundles": [str(b) for b in bundles],
        "postings": len(labels),
        "timed": timed,
        "threads": threads,
        "runs": {},
    }
    base = float(np.median(latencies[names[0]]))
    for name in names:
        backend, windows, inputs = pairs[name]
        backend.windows = windows
        read = [len(backend.encode([t]).input_ids) for t in inputs]  # one row per window read
        began = time.perf_counter()
        predictions = read_with(name)
        throughput = len(inputs) / (time.perf_counter() - began)
        accuracy = float((np.array([p.label for p in predictions]) == labels).mean())
        p50 = float(np.median(latencies[name]))
        figures["runs"][name] = {
            "p50_ms": round(p50, 2),
            "p95_ms": round(float(np.percentile(latencies[name], 95)), 2),
            "x_first": round(p50 / base, 2),
            "throughput_per_s": round(throughput, 1),
            "windows_read_median": float(np.median(read)),
            "windows_read_mean": round(float(np.mean(read)), 2),
            "accuracy_eval_2026": round(accuracy, 4),
        }
        click.echo(
            f"{name}: p50 {p50:.1f} ms ({p50 / base:.2f}x {names[0]}), {throughput:.1f} postings/s at "
            f"batch {backend.batch_size}, mean {np.mean(read):.2f} windows read, 2026 eval accuracy "
            f"{accuracy:.3f}"
        )
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
