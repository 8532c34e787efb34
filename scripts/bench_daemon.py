"""Benchmark the daemon as users hit it: a real `careeredge serve` subprocess, 8 concurrent clients
POSTing real 2025 postings to /api/v1/predict (every answer stored in SQLite).

Figures: throughput and p50/p95 latency under load, RSS of the daemon after 1,000 predictions,
process start to first answered request. Baseline measured in the same run: the same bundle in this
process, one posting at a time with no HTTP and no store (`inprocess_sequential_per_s`); the
throughput is also reported as a ratio to it.

    python scripts/bench_daemon.py --json bench/daemon.json     # Model A when artifacts/bundles/model_a_v1 exists
    python scripts/bench_daemon.py --model DIR --json out.json  # any bundle
    python scripts/bench_daemon.py --model DIR --json out.json --synchronous full,normal --rounds 3
    python scripts/bench_daemon.py --model DIR --json out.json --workers 1,2 --rounds 3

`--workers 1,2` runs a daemon per [model] inference_workers count under the same load, the counts
alternating round by round (medians of --rounds): what a second model call in flight buys.

`--synchronous full,normal` adds the cost of fsyncing every answered prediction ([store]
synchronous): in the same run, a daemon per mode takes the same load, the modes alternating round by
round, and the store alone inserts rows one commit each in both modes; medians and ratios to
"normal" are reported.

Without Model A and without --model, it builds the tiny test bundle (needs torch) and says so.
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
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

MODEL_A_BUNDLE = REPO_ROOT / "artifacts" / "bundles" / "model_a_v1"
KAGGLE_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"
TARGETS = {"throughput_per_s": 300.0, "rss_after_1000_mb": 250.0, "start_to_first_answer_s": 3.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_postings(limit: int = 200) -> list[str]:
    with KAGGLE_CSV.open(newline="", encoding="utf-8") as handle:
        return [row["description"] for row, _ in zip(csv.DictReader(handle), range(limit)) if row["description"]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_daemon(
    bundle: Path, work: Path, port: int, threads: int | None, synchronous: str = "full", workers: int | None = None
) -> tuple[subprocess.Popen, float]:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.toml"
    model = [f"threads = {threads}"] * bool(threads) + [f"inference_workers = {workers}"] * bool(workers)
    config.write_text(
        "[model]\n" + "".join(f"{line}\n" for line in model) + "[web]\nmax_request_bytes = 1048576\n"
        f'[store]\nsynchronous = "{synchronous}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "xdg"), "XDG_DATA_HOME": str(work / "xdg")}
    began = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "device.cli",
            "serve",
            "--port",
            str(port),
            "--model",
            str(bundle),
            "--db",
            str(work / f"bench-{synchronous}.db"),
            "--config",
            str(config),
            "--log-level",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "daemon.log").open("wb"),
    )
    return process, began


def wait_first_answer(url: str, began: float, process: subprocess.Popen, text: str) -> float:
    import requests

    while time.perf_counter() - began < 120:
        if process.poll() is not None:
            raise SystemExit(f"daemon exited with {process.returncode}")
        try:
            response = requests.post(url, json={"text": text}, timeout=30)
            if response.status_code == 200:
                return time.perf_counter() - began
        except requests.ConnectionError:
            pass
        time.sleep(0.01)
    raise SystemExit("daemon did not answer within 120 s")


def drive(url: str, postings: list[str], total: int, clients: int) -> tuple[list[float], float, int]:
    import requests

    latencies: list[float] = []
    failures = 0
    counter = iter(range(total))
    lock = threading.Lock()

    def client() -> None:
        nonlocal failures
        session = requests.Session()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            began = time.perf_counter()
            response = session.post(
                url, json={"text": postings[index % len(postings)], "id": str(uuid.uuid4())}, timeout=60
            )
            elapsed = time.perf_counter() - began
            with lock:
                if response.status_code == 200 and response.json().get("stored"):
                    latencies.append(elapsed * 1000)
                else:
                    failures += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - began, failures


def inprocess_baseline(bundle: Path, postings: list[str], threads: int | None, count: int = 50) -> float:
    from device.runtime import load_backend

    backend = load_backend(bundle, threads=threads)
    backend.predict(postings[:2])
    began = time.perf_counter()
    for i in range(count):
        backend.predict([postings[i % len(postings)]])
    return count / (time.perf_counter() - began)


def daemon_round(
    bundle: Path, work: Path, postings: list[str], args, synchronous: str = "full", workers: int | None = None
) -> tuple[list[float], float, float]:
    """A fresh daemon under the bench's load: (latencies in ms, wall time in s, RSS after, MB)."""
    import psutil

    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/predict"
    process, began = start_daemon(bundle, work, port, args.threads, synchronous, workers)
    try:
        wait_first_answer(url, began, process, postings[0])
        latencies, wall, _ = drive(url, postings, args.requests, args.clients)
        return latencies, wall, psutil.Process(process.pid).memory_info().rss / 1e6
    finally:
        process.terminate()
        process.wait(timeout=30)


def alternating(variants: list, rounds: int) -> list[list]:
    """Each round's order of the variants: forward, then backward, so drifting load hits them alike."""
    return [variants if number % 2 == 0 else list(reversed(variants)) for number in range(rounds)]


def summary(tables: dict[str, dict], base) -> tuple[dict, dict]:
    """Per figure (name -> {variant: values}): the medians, and each median's ratio to `base`'s."""
    median = {
        name: {v: round(statistics.median(values), 1) for v, values in table.items()} for name, table in tables.items()
    }
    ratio = {
        name: {v: round(m / by_variant[base], 3) for v, m in by_variant.items()} for name, by_variant in median.items()
    }
    return median, ratio


def compare_workers(bundle: Path, work: Path, postings: list[str], counts: list[int], rounds: int, args) -> dict:
    """The daemon under the same load with each [model] inference_workers count, alternating round by round."""
    figures = ("throughput_per_s", "latency_p50_ms", "rss_mb")
    tables: dict[str, dict[int, list[float]]] = {name: {n: [] for n in counts} for name in figures}
    for round_number, order in enumerate(alternating(counts, rounds)):
        for count in order:
            latencies, wall, rss_mb = daemon_round(bundle, work / f"workers-{count}-{round_number}", postings, args,
                                                   workers=count)  # fmt: skip
            tables["throughput_per_s"][count].append(round(len(latencies) / wall, 1))
            tables["latency_p50_ms"][count].append(round(statistics.median(latencies), 1))
            tables["rss_mb"][count].append(round(rss_mb, 1))
    median, ratio = summary(tables, counts[0])
    return {
        "counts": counts,
        "rounds": rounds,
        **tables,
        "median": median,
        f"throughput_vs_{counts[0]}": ratio["throughput_per_s"],
    }


def compare_synchronous(bundle: Path, work: Path, postings: list[str], modes: list[str], rounds: int, args) -> dict:
    """The daemon under the same load with each [store] synchronous mode, alternating, and raw inserts."""
    figures = ("throughput_per_s", "latency_p95_ms", "store_inserts_per_s")
    tables: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode in modes} for name in figures}
    for round_number, order in enumerate(alternating(modes, rounds)):
        for mode in order:
            latencies, wall, _ = daemon_round(bundle, work / f"{mode}-{round_number}", postings, args, mode)
            tables["throughput_per_s"][mode].append(round(len(latencies) / wall, 1))
            tables["latency_p95_ms"][mode].append(round(percentile(latencies, 0.95), 1))
        for mode in order:
            tables["store_inserts_per_s"][mode].append(
                store_inserts_per_s(work / f"inserts-{mode}-{round_number}.db", mode)
            )
    base = modes[-1]
    median, ratio = summary(tables, base)
    return {
        "modes": modes,
        "rounds": rounds,
        **tables,
        "median": median,
        f"throughput_vs_{base}": ratio["throughput_per_s"],
        f"store_inserts_vs_{base}": ratio["store_inserts_per_s"],
    }


def store_inserts_per_s(path: Path, synchronous: str, count: int = 2000) -> float:
    """One prediction per commit, as the daemon writes them: the raw cost of the fsync."""
    import uuid as uuid_module

    from device.store import PredictionStore

    path.parent.mkdir(parents=True, exist_ok=True)
    with PredictionStore(path, synchronous=synchronous) as store:
        record = {
            "text": "Data scientist: pandas, SQL and statistics.",
            "source": "api",
            "model_name": "bench",
            "model_version": "1",
            "label": 1,
            "label_name": "Data Science",
            "probabilities": [0.3, 0.7],
            "latency_ms": 1.0,
        }
        began = time.perf_counter()
        for _ in range(count):
            store.insert({**record, "uuid": str(uuid_module.uuid4())})
        return round(count / (time.perf_counter() - began), 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", dest="json_out", type=Path, required=True, help="Write the figures here.")
    parser.add_argument("--model", type=Path, default=None, help=f"Bundle [default: {MODEL_A_BUNDLE}].")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="[model] threads for the daemon.")
    parser.add_argument(
        "--synchronous", default=None, help="Also compare [store] synchronous modes side by side, e.g. full,normal."
    )
    parser.add_argument(
        "--workers", default=None, help="Also compare [model] inference_workers counts side by side, e.g. 1,2."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of the --synchronous / --workers comparison.")
    args = parser.parse_args(argv)

    import psutil

    postings = load_postings()
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        work = Path(tmp)
        bundle, model_note = args.model, "given with --model"
        if bundle is None and MODEL_A_BUNDLE.is_dir():
            bundle, model_note = MODEL_A_BUNDLE, "INT8 Model A"
        elif bundle is None:
            from tests.support.tiny_model import build_tiny_bundle

            print("artifacts/bundles/model_a_v1 not found: benchmarking the tiny test bundle instead", file=sys.stderr)
            bundle, model_note = build_tiny_bundle(work / "tiny"), "tiny test bundle (Model A not built)"

        # The baseline runs before and after the load phase and is averaged, so drifting load from
        # other processes on a shared box biases the ratio less.
        baseline_before = inprocess_baseline(Path(bundle), postings, args.threads)
        port = free_port()
        url = f"http://127.0.0.1:{port}/api/v1/predict"
        process, began = start_daemon(bundle, work, port, args.threads)
        try:
            start_to_first = wait_first_answer(url, began, process, postings[0])
            latencies, wall, failures = drive(url, postings, args.requests, args.clients)
            rss_mb = psutil.Process(process.pid).memory_info().rss / 1e6
            manifest = json.loads((Path(bundle) / "manifest.json").read_text())
        finally:
            process.terminate()
            process.wait(timeout=30)
        baseline_after = inprocess_baseline(Path(bundle), postings, args.threads)
        baseline = (baseline_before + baseline_after) / 2
        synchronous = None
        if args.synchronous:
            modes = [m.strip() for m in args.synchronous.split(",") if m.strip()]
            synchronous = compare_synchronous(Path(bundle), work, postings, modes, args.rounds, args)
        workers = None
        if args.workers:
            counts = [int(n) for n in args.workers.split(",") if n.strip()]
            workers = compare_workers(Path(bundle), work, postings, counts, args.rounds, args)

    throughput = len(latencies) / wall
    results = {
        "model": f"{manifest['name']}@{manifest['version']}",
        "model_note": model_note,
        "clients": args.clients,
        "requests": args.requests,
        "answered": len(latencies),
        "failures": failures,
        "throughput_per_s": round(throughput, 1),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p95_ms": round(percentile(latencies, 0.95), 1),
        "rss_after_1000_mb": round(rss_mb, 1),
        "start_to_first_answer_s": round(start_to_first, 2),
        "inprocess_sequential_per_s": round(baseline, 1),
        "inprocess_sequential_before_after_per_s": [round(baseline_before, 1), round(baseline_after, 1)],
        "load_average_1min": round(os.getloadavg()[0], 2),
        "throughput_vs_inprocess_sequential": round(throughput / baseline, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "targets": TARGETS,
    }
    if synchronous is not None:
        results["synchronous"] = synchronous
    if workers is not None:
        results["workers"] = workers
    results["meets_targets"] = (
        results["throughput_per_s"] >= TARGETS["throughput_per_s"]
        and results["rss_after_1000_mb"] <= TARGETS["rss_after_1000_mb"]
        and results["start_to_first_answer_s"] <= TARGETS["start_to_first_answer_s"]
    )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"daemon bench: {results['model']} ({model_note}), {args.clients} clients, {args.requests} requests")
    print(
        f"  {'throughput':<28}{results['throughput_per_s']:>8} pred/s   (target >= 300; "
        f"{results['throughput_vs_inprocess_sequential']}x in-process sequential {results['inprocess_sequential_per_s']}/s)"
    )
    print(f"  {'latency p50 / p95':<28}{results['latency_p50_ms']:>8} / {results['latency_p95_ms']} ms")
    print(f"  {'RSS after requests':<28}{results['rss_after_1000_mb']:>8} MB       (target <= 250)")
    print(f"  {'start to first answer':<28}{results['start_to_first_answer_s']:>8} s        (target <= 3)")
    print(
        f"  failures: {failures}; meets targets: {results['meets_targets']}; "
        f"load average {results['load_average_1min']} on {os.cpu_count()} cores"
    )
    if synchronous is not None:
        print(f"  [store] synchronous, medians of {synchronous['rounds']} alternating rounds:")
        for mode in synchronous["modes"]:
            median = synchronous["median"]
            print(
                f"    {mode:<8} daemon {median['throughput_per_s'][mode]:>7} pred/s, p95 "
                f"{median['latency_p95_ms'][mode]} ms; store alone {median['store_inserts_per_s'][mode]} inserts/s"
            )
    if workers is not None:
        print(f"  [model] inference_workers, medians of {workers['rounds']} alternating rounds:")
        median, ratio = workers["median"], workers[f"throughput_vs_{workers['counts'][0]}"]
        for count in workers["counts"]:
            print(
                f"    {count:<8} daemon {median['throughput_per_s'][count]:>7} pred/s ({ratio[count]}x), p50 "
                f"{median['latency_p50_ms'][count]} ms, RSS {median['rss_mb'][count]} MB"
            )
    return results


if __name__ == "__main__":
    main()
