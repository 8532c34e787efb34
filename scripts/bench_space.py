"""Benchmark Model A's Space as a client sees it: the built Space folder (`careeredge-cloud space build`) run as
its own process on loopback, real 2025 postings sent one at a time, every answer logged (JSONL sink).

Figures (p50 / p95 over --requests postings, after a warm-up):
* `http_api`: Gradio's HTTP API as curl uses it (POST /gradio_api/call/classify, then read the event stream):
  the Space's answer time, classify + driving terms + advice + logging included;
* `gradio_client`: the same call through gradio_client's `predict` (adds the client library's own overhead);
* baseline, same run: `SpaceModel.classify` in this process (no HTTP, no Gradio), the same postings.
The three run interleaved posting by posting, so machine noise hits them alike. Then it checks that every
request's log record reached the Space's JSONL file.

    python scripts/bench_space.py --json artifacts/bench/space.json     # Model A's bundle
    python scripts/bench_space.py --bundle DIR --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

KAGGLE_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"
TARGET_P50_MS = 100.0


def postings(count: int) -> list[str]:
    with KAGGLE_CSV.open(encoding="utf-8", newline="") as handle:
        texts = [row["description"] for row in csv.DictReader(handle) if row["description"].strip()]
    return [texts[i % len(texts)] for i in range(count)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def call_http_api(session, url: str, text: str) -> list:
    """Gradio's documented two-step HTTP API: submit, then read the event stream until `complete`."""
    event = session.post(f"{url}/gradio_api/call/classify", json={"data": [text, ""]}, timeout=60)
    event.raise_for_status()
    stream = session.get(f"{url}/gradio_api/call/classify/{event.json()['event_id']}", timeout=60, stream=True)
    kind = None
    for line in stream.iter_lines(decode_unicode=True):
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind in ("complete", "error"):
            if kind == "error":
                raise RuntimeError(f"the Space answered an error: {line}")
            return json.loads(line[5:])
    raise RuntimeError("the event stream ended without a result")


def interleaved(calls: dict, texts: list[str]) -> dict[str, list[float]]:
    """Each posting through every call in turn (rotating who goes first); milliseconds per call."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for index, text in enumerate(texts):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            began = time.perf_counter()
            calls[name](text)
            times[name].append((time.perf_counter() - began) * 1000)
    return times


def wait_for(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the Space exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the Space did not listen within {timeout} s")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", dest="json_out", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "artifacts" / "bundles" / "model_a_v1")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads in the Space.")
    args = parser.parse_args(argv)

    import requests
    from gradio_client import Client

    from cloud.space.app import SpaceModel
    from cloud.space.command import build_space
    from cloud.space.prediction_log import JsonlSink, PredictionLog

    texts = postings(args.requests)
    with tempfile.TemporaryDirectory(prefix="bench-space-") as tmp:
        work = Path(tmp)
        space = build_space(args.bundle, work / "space")
        baseline_log = PredictionLog(JsonlSink(work / "baseline.jsonl"))
        model = SpaceModel(space / "model", baseline_log, threads=args.threads)

        port, log_path = free_port(), work / "space_log.jsonl"
        env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "CAREEREDGE_SPACE_LOG": str(log_path),
            "CAREEREDGE_SPACE_THREADS": str(args.threads),
        }
        load_before = os.getloadavg()[0]
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(port, process)
            url = f"http://127.0.0.1:{port}"
            session = requests.Session()
            client = Client(url + "/", verbose=False)
            calls = {
                "http_api": lambda text: call_http_api(session, url, text),
                "gradio_client": lambda text: client.predict(text, "", api_name="/classify"),
                "inprocess": model.classify,
            }
            for call in calls.values():  # warm-up
                call(texts[0])
            times = interleaved(calls, texts)
            http_api, gradio_client, inprocess = times["http_api"], times["gradio_client"], times["inprocess"]
            time.sleep(1.0)  # the log thread flushes every 0.2 s
            logged = sum(1 for _ in log_path.open(encoding="utf-8")) if log_path.is_file() else 0
        finally:
            process.terminate()
            process.wait(timeout=30)
            baseline_log.close()
        manifest = json.loads((args.bundle / "manifest.json").read_text())

    expected_logs = 2 + 2 * len(texts)  # two warm-ups + the HTTP API and gradio_client passes
    results = {
        "model": f"{manifest['name']}@{manifest['version']}",
        "requests": len(texts),
        "threads": args.threads,
        "http_api_p50_ms": round(statistics.median(http_api), 1),
        "http_api_p95_ms": round(percentile(http_api, 0.95), 1),
        "gradio_client_p50_ms": round(statistics.median(gradio_client), 1),
        "gradio_client_p95_ms": round(percentile(gradio_client, 0.95), 1),
        "inprocess_p50_ms": round(statistics.median(inprocess), 1),
        "http_api_vs_inprocess_p50": round(statistics.median(http_api) / statistics.median(inprocess), 2),
        "log_records": logged,
        "log_records_expected": expected_logs,
        "target_p50_ms": TARGET_P50_MS,
        "meets_target": statistics.median(http_api) <= TARGET_P50_MS,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"space bench: {results['model']}, {len(texts)} real 2025 postings, one at a time, logging on")
    print(
        f"  {'HTTP API p50 / p95':<26}{results['http_api_p50_ms']:>8} / {results['http_api_p95_ms']} ms (target <= 100)"
    )
    print(
        f"  {'gradio_client p50 / p95':<26}{results['gradio_client_p50_ms']:>8} / {results['gradio_client_p95_ms']} ms"
    )
    print(
        f"  {'in-process p50':<26}{results['inprocess_p50_ms']:>8} ms (HTTP API = {results['http_api_vs_inprocess_p50']}x)"
    )
    print(f"  log records {logged} of {expected_logs}; load average {results['load_average_1min']}")
    return results


if __name__ == "__main__":
    main()
