"""Benchmark monitoring: metric agreement, the job over 100,000 logged predictions, dashboard first
paint, shadow mode's cost on the served latency, and the weekly replay's per-week table.

    python scripts/bench_monitoring.py --json bench/monitoring.json
    python scripts/bench_monitoring.py --json out.json --predictions 20000 --skip dashboard,shadow

Parts (each one a key of the JSON):
* `metrics`: max |ours - scipy.spatial.distance.jensenshannon(p, q, base=2)^2| over 2,000 random pairs
  (and Evidently's when it is importable: an optional oracle, not a dependency);
* `job`: `careeredge-cloud monitor --store` over N predictions in a SQLite collector store (texts from
  the committed 2025 CSV), as a subprocess: cold (every row projected) and warm (the projection cache
  holds them: what a weekly run pays for last week's rows); wall, CPU and peak RSS;
* `dashboard`: first contentful paint of `/` in headless Chromium, the dashboard serving the report
  with the N-prediction store attached (live count), median of 7 loads;
* `shadow`: the served latency (Daemon.classify, in process) with and without a shadow bundle,
  interleaved request by request in one run: p50 of each and their ratio;
* `replay`: the per-week table of `artifacts/monitoring/weekly.json` (run `careeredge-cloud
  replay-weeks` first), with the total wall time.

Timings are medians; the machine's load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

KAGGLE_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"
EMBEDDED_BUNDLE = REPO_ROOT / "device" / "embedded_bundle"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PARTS = ("metrics", "job", "dashboard", "shadow", "replay")
TARGETS = {"metric_max_abs_diff": 1e-9, "job_warm_wall_s": 10.0, "first_paint_ms": 1000.0, "shadow_p50_ratio": 1.05}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": [round(x, 2) for x in os.getloadavg()]}


def bench_metrics(pairs: int = 2000) -> dict:
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    from shared.monitoring.drift import jensen_shannon, l_infinity

    rng = np.random.default_rng(2026)
    worst_js = worst_linf = 0.0
    for _ in range(pairs):
        size = int(rng.integers(2, 40))
        p, q = rng.dirichlet(np.ones(size)), rng.dirichlet(np.ones(size))
        if rng.random() < 0.3:
            p[rng.integers(size)] = 0
            p /= p.sum()
        worst_js = max(worst_js, abs(jensen_shannon(p, q) - jensenshannon(p, q, base=2) ** 2))
        worst_linf = max(worst_linf, abs(l_infinity(p, q) - float(np.max(np.abs(p - q)))))
    result = {"pairs": pairs, "jensen_shannon_vs_scipy_max_abs_diff": worst_js, "l_infinity_max_abs_diff": worst_linf}
    try:
        result["evidently"] = evidently_oracle(rng)
    except ImportError:
        result["evidently"] = "not installed (an optional oracle, not a dependency: run this part in a venv with it)"
    return result


def evidently_oracle(rng, samples: int = 300) -> dict:
    """Evidently's own stattests on categorical samples (value counts: the buckets are the categories,
    so both sides bucket alike): its Jensen-Shannon *distance* squared vs our divergence, its PSI vs ours
    (samples where every category occurs on both sides: the two floor empty buckets differently)."""
    import numpy as np
    import pandas as pd
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    from shared.monitoring.drift import jensen_shannon, psi

    worst_js = worst_psi = 0.0
    for _ in range(samples):
        k = int(rng.integers(2, 8))
        ref = rng.integers(0, k, int(rng.integers(50, 400)))
        cur = rng.integers(0, k, int(rng.integers(50, 400)))
        if len(set(ref.tolist())) < k or len(set(cur.tolist())) < k:
            continue
        p, q = np.bincount(ref, minlength=k) / len(ref), np.bincount(cur, minlength=k) / len(cur)
        their_js, _ = _jensenshannon(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.1, base=2)
        their_psi, _ = _psi(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.1)
        worst_js = max(worst_js, abs(their_js**2 - jensen_shannon(p, q)))
        worst_psi = max(worst_psi, abs(their_psi - psi(p, q)))
    import evidently

    return {"version": evidently.__version__, "jensen_shannon_max_abs_diff": worst_js, "psi_max_abs_diff": worst_psi}


def texts(limit: int) -> list[str]:
    with KAGGLE_CSV.open(newline="", encoding="utf-8") as handle:
        return [row["description"] for row, _ in zip(csv.DictReader(handle), range(limit)) if row["description"]]


def build_store(path: Path, count: int) -> None:
    """A collector store holding `count` predictions over 8 weeks from 20 devices, a third shadowed."""
    from cloud.collector.storage import open_storage
    from shared.labels import LABEL_NAMES
    from shared.mqtt.contract import PREDICTION_BATCH

    pool = texts(400)
    storage = open_storage(str(path))
    storage.open()
    start = datetime(2026, 7, 6, tzinfo=UTC)
    batch_size = 500
    for first in range(0, count, batch_size):
        records = []
        for i in range(first, min(count, first + batch_size)):
            label = i % 2
            text = f"{pool[i % len(pool)][:15000]} [{i}]"  # distinct rows, real posting text (contract cap)
            record = {
                "uuid": str(uuid.UUID(int=i + 1)),
                "created_at": (start + timedelta(seconds=i * 8 * 7 * 86400 // count)).isoformat().replace("+00:00", "Z"),
                "source": "api", "model_name": "model_a_v1", "model_version": "1", "text_sha256": None,
                "text": text, "snippet": text[:200], "label": label, "label_name": LABEL_NAMES[label],
                "probabilities": [0.3, 0.7] if label else [0.8, 0.2], "latency_ms": 20.0,
            }  # fmt: skip
            if i % 3 == 0:
                record["shadow"] = {"model_name": "model_b_v3", "model_version": "3", "probabilities": [0.4, 0.6]}
            records.append(record)
        batch = {"schema": PREDICTION_BATCH.schema_id, "device_id": f"pi-{first // batch_size % 20}",
                 "batch_id": str(uuid.UUID(int=10**9 + first)), "sent_at": "2026-09-01T00:00:00Z", "records": records}  # fmt: skip
        PREDICTION_BATCH.validate(batch)
        storage.store_prediction_batches([batch])
        storage.store_monitoring([batch])
    storage.close()


def run_monitor(store: Path, splits: Path, work: Path, cache: Path) -> dict:
    command = [sys.executable, "-m", "cloud.cli", "monitor", "--store", str(store), "--splits", str(splits),
               "--out", str(work / "field.json"), "--cache", str(cache), "--params", str(REPO_ROOT / "params.yaml")]  # fmt: skip
    began, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    wall, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),  # the largest child so far (Linux: kB)
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "output": result.stdout.strip(),
    }


def splits_dir(work: Path) -> Path:
    from cloud.data.prepare import run_label, run_prepare

    run_prepare(KAGGLE_CSV, work / "interim")
    run_label(work / "interim" / "postings_2025.jsonl", work / "processed", (0.7, 0.15, 0.15), 2025)
    return work / "processed" / "splits"


def bench_job(work: Path, count: int) -> dict:
    store = work / "collector.sqlite"
    began = time.perf_counter()
    build_store(store, count)
    built_s = time.perf_counter() - began
    splits = splits_dir(work)
    cache = work / "projection_cache.npz"
    cold = run_monitor(store, splits, work, cache)
    warm = [run_monitor(store, splits, work, cache) for _ in range(3)]
    return {
        "predictions": count,
        "store_bytes": store.stat().st_size,
        "store_build_s": round(built_s, 1),
        "cold": cold,
        "warm_runs": warm,
        "warm_wall_s_median": statistics.median(r["wall_s"] for r in warm),
        "warm_cpu_s_median": statistics.median(r["cpu_s"] for r in warm),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_dashboard(work: Path, store: Path, loads: int = 7) -> dict:
    import requests
    from playwright.sync_api import sync_playwright

    reports = work / "reports"
    weekly = REPO_ROOT / "artifacts" / "monitoring" / "weekly.json"
    subprocess.run([sys.executable, "-m", "cloud.cli", "report", "--weekly", str(weekly), "--monitor",
                    str(work / "field.json"), "--out", str(reports)], check=True, cwd=REPO_ROOT, capture_output=True)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.cli",
            "dashboard",
            "--monitoring",
            str(reports / "monitoring.json"),
            "--store",
            str(store),
            "--port",
            str(port),
        ],  # fmt: skip
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(200):
            try:
                requests.get(url + "api/monitoring.json", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        paints, loads_ms = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(loads):
                page = browser.new_page()
                page.goto(url, wait_until="load")
                paint = page.evaluate(
                    "() => { const e = performance.getEntriesByName('first-contentful-paint')[0];"
                    " return e ? e.startTime : null; }"
                )
                timing = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
                paints.append(paint)
                loads_ms.append(timing)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    shown = [p for p in paints if p is not None]
    return {
        "predictions_stored": True,
        "first_contentful_paint_ms_median": round(statistics.median(shown), 1) if shown else None,
        "first_contentful_paint_ms": [round(p, 1) for p in shown],
        "load_event_ms_median": round(statistics.median(loads_ms), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bench_shadow(work: Path, requests_each: int = 150, pause_s: float = 0.05) -> dict:
    """Served latency of Daemon.classify with and without a shadow, interleaved in one process."""
    from device.config import load_config
    from device.daemon import Daemon

    def daemon(name: str, shadow: Path | None) -> Daemon:
        config = load_config(env={})
        config.override("model", bundle=EMBEDDED_BUNDLE, threads=1)
        config.override("store", path=work / f"{name}.db")
        config.override("profile", trends_file=work / "none.json")
        if shadow is not None:
            config.override("model", shadow=shadow)
        return Daemon(config)

    shadow_bundle = work / "shadow_bundle"
    shutil.copytree(EMBEDDED_BUNDLE, shadow_bundle, dirs_exist_ok=True)
    plain, shadowed = daemon("plain", None), daemon("shadowed", shadow_bundle)
    pool = texts(requests_each)
    for text in pool[:10]:  # warm both
        plain.classify(text, source="api")
        shadowed.classify(text, source="api")
    shadowed.shadow.drain(120)
    timings = {"no_shadow": [], "shadow": []}
    for i in range(requests_each):
        for name, target in (("no_shadow", plain), ("shadow", shadowed))[:: 1 if i % 2 else -1]:
            began = time.perf_counter()
            target.classify(pool[i % len(pool)] + f" ({i})", source="api")
            timings[name].append((time.perf_counter() - began) * 1000)
            time.sleep(pause_s)  # traffic with gaps, as a LAN page sees it
    shadowed.shadow.drain(300)
    stats = shadowed.shadow.stats.to_json()
    plain.close()
    shadowed.close()
    p50 = {name: statistics.median(values) for name, values in timings.items()}
    return {
        "requests_each": requests_each,
        "p50_ms": {k: round(v, 2) for k, v in p50.items()},
        "p95_ms": {k: round(sorted(v)[int(0.95 * (len(v) - 1))], 2) for k, v in timings.items()},
        "p50_ratio_shadow_vs_none": round(p50["shadow"] / p50["no_shadow"], 3),
        "shadow": stats,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bench_replay() -> dict:
    from cloud.monitoring.study import read_optional, week_rows

    weekly = read_optional(REPO_ROOT / "artifacts" / "monitoring" / "weekly.json")
    if not weekly:
        return {"note": "artifacts/monitoring/weekly.json not found: run `careeredge-cloud replay-weeks` first"}
    rows = week_rows({"replay": weekly})
    return {
        "weeks": rows,
        "total_wall_s": round(sum(r["wall_s"] for r in rows), 1),
        "max_week_wall_s": max(r["wall_s"] for r in rows),
        "train_b": weekly.get("train_b"),
    }


def print_table(result: dict) -> None:
    if "metrics" in result:
        print(f"metrics: JS vs scipy max |diff| {result['metrics']['jensen_shannon_vs_scipy_max_abs_diff']:.2e}")
    if "job" in result:
        job = result["job"]
        print(f"job over {job['predictions']}: cold {job['cold']['wall_s']} s wall / {job['cold']['cpu_s']} s CPU, "
              f"warm median {job['warm_wall_s_median']} s wall, peak RSS {job['cold']['peak_rss_mb']} MB")  # fmt: skip
    if "dashboard" in result:
        print(f"dashboard first contentful paint: {result['dashboard']['first_contentful_paint_ms_median']} ms")
    if "shadow" in result:
        s = result["shadow"]
        print(f"shadow: p50 {s['p50_ms']} ms, ratio {s['p50_ratio_shadow_vs_none']}")
    if "replay" in result and "weeks" in result["replay"]:
        print("week      2026 eval A/B   slice n  A/B          2025 test A/B   wall s")
        for r in result["replay"]["weeks"]:
            print(f"{r['week']}  {r['eval_2026_model_a']:.3f}/{r['eval_2026_model_b']:.3f}   {r['week_slice_n']:5d}  "
                  f"{r['week_slice_model_a'] or 0:.3f}/{r['week_slice_model_b'] or 0:.3f}  "
                  f"{r['test_2025_model_a']:.3f}/{r['test_2025_model_b']:.3f}   {r['wall_s']:.0f}")  # fmt: skip
        print(f"replay total {result['replay']['total_wall_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="Write the figures here.")
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--skip", default="", help=f"Comma-separated parts to skip: {', '.join(PARTS)}.")
    args = parser.parse_args()
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        work = Path(tmp)
        if "metrics" not in skip:
            result["metrics"] = bench_metrics()
        if "job" not in skip:
            result["job"] = bench_job(work, args.predictions)
        if "dashboard" not in skip and "job" not in skip:
            result["dashboard"] = bench_dashboard(work, work / "collector.sqlite")
        if "shadow" not in skip:
            result["shadow"] = bench_shadow(work)
        if "replay" not in skip:
            result["replay"] = bench_replay()
        result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)


if __name__ == "__main__":
    main()
