#!/usr/bin/env python
"""Faults a trusted appliance must ride out, each measured end to end on real parts.

    python scripts/bench_faults.py --json bench/faults.json            # the full run (~20 min on 2 busy cores)
    python scripts/bench_faults.py --json bench/faults.json --quick    # a reduced run (tests/test_bench_faults.py)
    python scripts/bench_faults.py --json out.json --only http_fuzz,ota_kill

Parts (all on loopback; the device model is the shipped Model A bundle, device/embedded_bundle):
- http_fuzz: a `careeredge serve` takes >= 2,000 malformed requests over raw sockets
  (tests/support/http_fuzz.py, seeded; the admin token on most admin requests) after a warm-up of
  ordinary and explained predictions from 8 clients; figures: answers by status, 5xx (target 0), RSS
  growth across the fuzz (target <= 20 MB) and after each slice of 500 requests;
- collector_poison: 1,000 poison messages shuffled among 10,000 good ones through one
  `careeredge-cloud collect` (scripts/bench_fleet.py's run_poison_mix): crashes, stored, dead letters;
- collector_outage: the collector is stopped while a device logs 10,000 predictions, the broker's
  queue holds 20 messages (the device makes 1,000+ batches of 10), then the collector starts again:
  lost (target 0), duplicates, re-sent rows, time to drain;
- ota_kill: kill -9 at each step of an update (download, verify, stage, health check, swap), 20
  times each (tests/support/ota_kill.py): every boot must serve a healthy, signed v1 or v2, never an
  unconfirmed swap, and the update must then finish on v2;
- kill9_under_load: `careeredge serve` SIGKILLed 20 times while clients post predictions
  (tests/support/kill_under_load.py): lost and duplicated answered predictions (target 0 and 0).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

EMBEDDED_BUNDLE = REPO_ROOT / "device" / "embedded_bundle"
PARTS = ("http_fuzz", "collector_poison", "collector_outage", "ota_kill", "kill9_under_load")
ADMIN_TOKEN = "bench-faults-admin-token"
SKILL_DENSE = (
    "We need Python, SQL, Kubernetes, Docker, AWS, PyTorch, TensorFlow, Spark, Airflow, React, Java, Go, "
    "Rust, Scala, Tableau, pandas, statistics, A/B testing, LangChain and Kafka. "
) * 12
FUZZ_SLICE = 500  # fuzz requests between two RSS readings
TARGETS = {"http_5xx": 0, "http_rss_growth_mb": 20.0, "outage_lost": 0, "ota_problems": 0, "kill9_lost": 0}


def sizes(quick: bool) -> dict:
    if quick:
        return {
            "fuzz": 300,
            "good": 1000,
            "poison": 100,
            "outage_rows": 500,
            "outage_s": 6,
            "ota_per_step": 1,
            "kills": 2,
        }
    return {
        "fuzz": 2500,
        "good": 10_000,
        "poison": 1000,
        "outage_rows": 10_000,
        "outage_s": 120,
        "ota_per_step": 20,
        "kills": 20,
    }


# --- http_fuzz --------------------------------------------------------------------------------------


def run_http_fuzz(work: Path, bundle: Path, count: int) -> dict:
    import psutil
    import requests

    from tests.daemon.conftest import start_daemon
    from tests.support import http_fuzz

    daemon = start_daemon(work, bundle, config_text=f'[admin]\ntoken = "{ADMIN_TOKEN}"\n')
    try:
        host, port = daemon.url.split("//")[1].rstrip("/").split(":")
        process = psutil.Process(daemon.process.pid)

        # Warm-up: what the daemon does all day (the ONNX Runtime arena grows to its working size), from
        # as many clients as waitress has threads (each thread's malloc arena grows too).
        def ordinary(i: int) -> None:
            requests.post(daemon.url + "api/v1/predict", json={"text": f"{SKILL_DENSE} {i}"}, timeout=120)
            if i % 8 == 0:
                requests.post(daemon.url + "api/v1/predict", json={"text": SKILL_DENSE, "explain": True}, timeout=120)

        with ThreadPoolExecutor(max_workers=8) as clients:
            list(clients.map(ordinary, range(32)))
        rss_before = process.memory_info().rss
        began = time.monotonic()
        result, rss_by_slice = http_fuzz.FuzzResult(), []
        for first in range(0, count, FUZZ_SLICE):  # RSS after each slice: a leak climbs, a working set levels
            size = min(FUZZ_SLICE, count - first)
            result.merge(http_fuzz.run(host, int(port), seed=2026 + first, count=size, admin_token=ADMIN_TOKEN))
            rss_by_slice.append(round((process.memory_info().rss - rss_before) / 1e6, 1))
        elapsed = time.monotonic() - began
        rss_after = process.memory_info().rss
        healthy = requests.get(daemon.url + "healthz", timeout=10).status_code == 200
    finally:
        daemon.stop()
    failed = [e for e in daemon.log_events() if e.get("event") == "request.failed"]
    return {
        **result.as_dict(),
        "rss_before_mb": round(rss_before / 1e6, 1),
        "rss_after_mb": round(rss_after / 1e6, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 1e6, 1),
        "rss_growth_after_each_slice_mb": rss_by_slice,
        "requests_per_s": round(result.sent / elapsed, 1),
        "healthz_after": healthy,
        "request_failed_log_lines": len(failed),
    }


# --- collector_poison --------------------------------------------------------------------------------


@functools.cache
def bench_fleet():
    """scripts/bench_fleet.py as a module: its poison run and its wait are reused here."""
    spec = importlib.util.spec_from_file_location("bench_fleet", REPO_ROOT / "scripts" / "bench_fleet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_collector_poison(work: Path, good: int, poison: int) -> dict:
    return bench_fleet().run_poison_mix(str(work / "poison.sqlite"), work / "poison", good=good, poison=poison)


# --- collector_outage --------------------------------------------------------------------------------

OUTAGE_QUEUE = 20  # max_queued_messages on the broker: fewer than one device's re-sends during the outage


def run_collector_outage(work: Path, rows: int, outage_s: float) -> dict:
    from cloud.collector.storage import open_storage
    from device.store import PredictionStore
    from device.sync.agent import SyncAgent, SyncSettings
    from shared.mqtt.client import BrokerSettings
    from tests.support.mosquitto import Mosquitto
    from tests.support.simulated_fleet import CollectorProcess
    from tests.sync.conftest import prediction_record

    store_url = str(work / "outage.sqlite")
    storage = open_storage(store_url)
    storage.open()
    with Mosquitto(work / "outage-broker", extra_config=f"max_queued_messages {OUTAGE_QUEUE}\n") as broker:
        settings = BrokerSettings(host=broker.host, port=broker.port, reconnect_min_s=1, reconnect_max_s=2)
        collector = CollectorProcess(store_url, settings, "outage-collector", work / "outage")
        collector.start()
        collector.wait_subscribed()
        collector.stop()  # its persistent session stays on the broker: the broker queues its share
        device_db = work / "outage-device.db"
        agent = SyncAgent(
            SyncSettings(
                device_id="pi-outage",
                broker=settings,
                channel="stable",
                models_dir=work / "outage-models",
                public_key=None,
                batch_size=10,
                poll_interval_s=0.2,
                ack_timeout_s=5.0,
            ),
            store_factory=lambda: PredictionStore(device_db),
            close_store=True,
            enable_ota=False,
        ).start()
        made: list[str] = []
        with PredictionStore(device_db) as store:  # the daemon's writes, while the collector is away
            for i in range(rows):
                made.append(store.insert(prediction_record(i)))
                if i % 100 == 99:
                    time.sleep(0.05)
        time.sleep(outage_s)  # the collector stays away after the last prediction: re-sends pile up meanwhile
        synced_during_outage = rows - unsynced_rows(device_db)
        outage_published = agent.counters.published_rows
        collector.start()
        began = time.monotonic()
        drained = bench_fleet().wait_until(
            lambda: unsynced_rows(device_db) == 0, 900, "every row acknowledged after the outage"
        )
        agent.stop()
        collector.stop()
        dropped_by_broker = broker.log_path.read_text(errors="replace").count("Outgoing messages are being dropped")
    stored_keys = storage.prediction_uuids()
    result = {
        "predictions_made": rows,
        "outage_after_last_prediction_s": outage_s,
        "broker_max_queued_messages": OUTAGE_QUEUE,
        "device_batch_size": 10,
        "rows_marked_synced_during_outage": synced_during_outage,
        "rows_published_during_outage": outage_published,
        "broker_queue_overflow_warnings": dropped_by_broker,
        "stored": storage.prediction_count(),
        "lost": len(set(made) - stored_keys),
        "duplicates": storage.prediction_count() - len(stored_keys),
        "rows_published_in_all": agent.counters.published_rows,
        "drain_s": round(drained - began, 1),
    }
    storage.close()
    return result


def unsynced_rows(path: Path) -> int:
    from device.store import PredictionStore

    with PredictionStore(path) as store:
        return store.count_unsynced()


# --- ota_kill ------------------------------------------------------------------------------------------


def run_ota_kill(work: Path, bundle: Path, per_step: int) -> dict:
    from shared.bundle import read_manifest, save_manifest
    from shared.signing import generate_keypair, load_private_key, load_public_key
    from tests.support.ota_kill import STEPS, prepare, run_once

    def bump_version(src: Path, dest: Path, version: str) -> Path:
        shutil.copytree(src, dest)
        manifest = read_manifest(dest)
        manifest["version"] = version
        save_manifest(dest, manifest)
        return dest

    keys = work / "ota-keys"
    generate_keypair(keys / "signing.pem", keys / "signing.pub.pem")
    private, public = load_private_key(keys / "signing.pem"), load_public_key(keys / "signing.pub.pem")
    releases, template = prepare(work / "ota", bundle, private, bump_version)
    per_step_results = {}
    problems = []
    for step in STEPS:
        outcomes = [
            run_once(step, seed, work / "ota", template, releases, keys / "signing.pub.pem", public)
            for seed in range(per_step)
        ]
        problems += [f"{o.step}/{o.seed}: {p}" for o in outcomes for p in o.problems]
        per_step_results[step] = {
            "runs": len(outcomes),
            "killed": sum(o.killed for o in outcomes),
            "unconfirmed_swaps_at_kill": sum(o.unconfirmed_at_kill for o in outcomes),
            "booted_on": {v: sum(o.served_after_boot == v for o in outcomes) for v in ("1", "2")},
            "signed_and_healthy": sum(o.signed and o.healthy for o in outcomes),
            "finished_on_v2": sum(o.finished_on == "2" for o in outcomes),
            "problems": sum(len(o.problems) for o in outcomes),
        }
        print(f"  ota_kill {step}: {per_step_results[step]}", flush=True)
    return {"steps": per_step_results, "problems": problems[:20], "problem_count": len(problems)}


# --- kill9_under_load -----------------------------------------------------------------------------------


def run_kill9_under_load(work: Path, bundle: Path, kills: int) -> dict:
    from tests.daemon.conftest import start_daemon
    from tests.support.kill_under_load import kill_under_load

    started = []

    def launch(db: Path):
        folder = work / f"kill9-{len(started)}"
        folder.mkdir(parents=True)
        daemon = start_daemon(folder, bundle, db_path=db)
        started.append(daemon)
        return daemon

    try:
        report = kill_under_load(launch, work / "kill9.db", kills=kills)
    finally:
        for daemon in started:
            if daemon.process.poll() is None:
                daemon.process.kill()
    return report.as_dict()


# --- main --------------------------------------------------------------------------------------------


def machine() -> dict:
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "commit": subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", dest="json_out", type=Path, required=True, help="Write the figures here.")
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run for CI.")
    parser.add_argument("--only", default=",".join(PARTS), help=f"Comma-separated parts of {', '.join(PARTS)}.")
    parser.add_argument("--bundle", type=Path, default=EMBEDDED_BUNDLE, help="Device model bundle.")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    n = sizes(args.quick)
    results: dict = {"quick": args.quick, "sizes": n, **machine(), "targets": TARGETS}
    runners = {
        "http_fuzz": lambda work: run_http_fuzz(work, args.bundle, n["fuzz"]),
        "collector_poison": lambda work: run_collector_poison(work, n["good"], n["poison"]),
        "collector_outage": lambda work: run_collector_outage(work, n["outage_rows"], n["outage_s"]),
        "ota_kill": lambda work: run_ota_kill(work, args.bundle, n["ota_per_step"]),
        "kill9_under_load": lambda work: run_kill9_under_load(work, args.bundle, n["kills"]),
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for part in parts:
            print(f"bench_faults: {part} ...", flush=True)
            began = time.monotonic()
            work = Path(tmp) / part
            work.mkdir()
            results[part] = runners[part](work)
            results[part]["seconds"] = round(time.monotonic() - began, 1)
            args.json_out.write_text(json.dumps(results, indent=2) + "\n")  # saved after every part
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["meets_targets"] = meets_targets(results)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    return results


def meets_targets(results: dict) -> bool:
    checks = []
    if "http_fuzz" in results:
        fuzz = results["http_fuzz"]
        checks += [fuzz["answered_5xx"] == 0, fuzz["rss_growth_mb"] <= TARGETS["http_rss_growth_mb"]]
    if "collector_poison" in results:
        poison = results["collector_poison"]
        checks += [poison["crashes"] == 0, poison["stored"] == poison["good_messages"]]
    if "collector_outage" in results:
        checks += [results["collector_outage"]["lost"] == 0, results["collector_outage"]["duplicates"] == 0]
    if "ota_kill" in results:
        checks.append(results["ota_kill"]["problem_count"] == 0)
    if "kill9_under_load" in results:
        kill9 = results["kill9_under_load"]
        checks += [kill9["lost"] == 0, kill9["duplicated"] == 0, kill9["integrity"] == "ok"]
    return all(checks)


def print_summary(results: dict) -> None:
    print(f"fault bench ({'quick' if results['quick'] else 'full'}), {results['machine']}, commit {results['commit']}")
    if "http_fuzz" in results:
        f = results["http_fuzz"]
        print(f"  http fuzz        {f['sent']} requests: {f['answered_5xx']} x 5xx, RSS {f['rss_growth_mb']:+} MB")
    if "collector_poison" in results:
        p = results["collector_poison"]
        print(
            f"  collector poison {p['poison_messages']} poison + {p['good_messages']} good: {p['crashes']} crashes, "
            f"{p['stored']} stored, {p['dead_lettered']} dead-lettered"
        )
    if "collector_outage" in results:
        o = results["collector_outage"]
        print(
            f"  collector outage {o['predictions_made']} predictions, queue {o['broker_max_queued_messages']}: "
            f"{o['lost']} lost, {o['duplicates']} duplicated, drained in {o['drain_s']} s"
        )
    if "ota_kill" in results:
        k = results["ota_kill"]
        runs = sum(s["runs"] for s in k["steps"].values())
        print(f"  OTA kill -9      {runs} kills over {len(k['steps'])} steps: {k['problem_count']} problems")
    if "kill9_under_load" in results:
        k = results["kill9_under_load"]
        print(
            f"  kill -9 on load  {k['kills']} kills, {k['acknowledged']} answered: {k['lost']} lost, "
            f"{k['duplicated']} duplicated, integrity {k['integrity']}"
        )
    print(f"  meets targets: {results['meets_targets']}")


if __name__ == "__main__":
    threading.current_thread().name = "bench-faults"
    main()
