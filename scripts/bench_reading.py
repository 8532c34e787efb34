#!/usr/bin/env python
"""What reading more windows of a posting costs on the device runtime (`shared.reading`).

    python scripts/bench_reading.py --bundle artifacts/bundles/model_b_v4 --json artifacts/bench/reading.json

One INT8 bundle, one process, the 2026 evaluation postings (taxonomy-labelled, as evaluate-b scores them).
For each window count (1 .. the bundle's own `windows`, or --windows) the same backend object reads every
posting that many windows deep; the counts take turns posting by posting, so machine noise hits them alike.
Figures are medians: per-posting latency at batch 1 (p50/p95), throughput at batch 16, the windows actually
read per posting, accuracy on the split, and each latency as a ratio to one window.
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

BATCH = 16
WARMUP = 3


@click.command()
@click.option("--bundle", type=click.Path(path_type=Path), required=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), required=True, help="Write figures here.")
@click.option("--normalized", type=click.Path(path_type=Path), default=Path("data/normalized"), show_default=True)
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"),
              show_default=True)
@click.option("--windows", "window_counts", type=int, multiple=True,
              help="Window counts to compare [default: 1 .. the bundle's windows].")
@click.option("--threads", default=2, show_default=True)
@click.option("--limit", default=0, help="Only the first N postings for latency (0 = all).")
def main(bundle, json_out, normalized, params_path, window_counts, threads, limit) -> None:
    from cloud.ingest.normalize_command import load_postings
    from cloud.params import load_params
    from cloud.training.pseudo_label import pseudo_label_settings
    from cloud.training.stream_split import split_stream
    from device.runtime import load_backend
    from shared.reading import check_windows
    from shared.text import model_input

    backend = load_backend(bundle, threads=threads)
    counts = sorted({check_windows(n) for n in window_counts} or range(1, backend.windows + 1))
    stream = split_stream(load_postings(normalized), pseudo_label_settings(load_params(params_path))["eval_fraction"])
    inputs = [model_input(p.description, backend.preprocessing) for p in stream.evaluation]
    labels = np.asarray(stream.eval_labels)
    timed = inputs[:limit] if limit else inputs

    def read_with(windows: int, texts: list[str]):
        backend.windows = windows
        return backend.predict_model_inputs(texts)

    for windows in counts:
        read_with(windows, timed[:WARMUP])
    latencies: dict[int, list[float]] = {n: [] for n in counts}
    for i, text in enumerate(timed):
        for windows in counts[i % len(counts):] + counts[:i % len(counts)]:   # rotate who goes first
            began = time.perf_counter()
            read_with(windows, [text])
            latencies[windows].append((time.perf_counter() - began) * 1000)
    figures = {"bundle": str(bundle), "postings": len(inputs), "timed": len(timed), "threads": threads, "runs": {}}
    base = float(np.median(latencies[counts[0]]))
    for windows in counts:
        backend.windows = windows
        read = [len(backend.encode([t]).input_ids) for t in inputs]     # one row per window read
        began = time.perf_counter()
        predictions = read_with(windows, inputs)
        throughput = len(inputs) / (time.perf_counter() - began)
        accuracy = float((np.array([p.label for p in predictions]) == labels).mean())
        p50 = float(np.median(latencies[windows]))
        figures["runs"][str(windows)] = {
            "p50_ms": round(p50, 2), "p95_ms": round(float(np.percentile(latencies[windows], 95)), 2),
            "x_one_window": round(p50 / base, 2), "throughput_per_s": round(throughput, 1),
            "windows_read_median": float(np.median(read)), "windows_read_mean": round(float(np.mean(read)), 2),
            "accuracy_eval_2026": round(accuracy, 4)}
        click.echo(f"windows {windows}: p50 {p50:.1f} ms ({p50 / base:.2f}x one window), "
                   f"{throughput:.1f} postings/s at batch {backend.batch_size}, mean {np.mean(read):.2f} windows "
                   f"read, 2026 eval accuracy {accuracy:.3f}")
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
