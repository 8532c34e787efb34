#!/usr/bin/env python
"""Fleet load bench: simulated devices -> one mosquitto -> N collector processes -> PostgreSQL (or SQLite).

    python scripts/bench_fleet.py --json bench/fleet.json              # everything (~25 min + outage)
    python scripts/bench_fleet.py --json bench/fleet.json --quick      # a small smoke run (~2 min)

What runs, all on loopback: a real mosquitto (persistence on, queue limits as in
systemd/mosquitto-fleet.conf), a real PostgreSQL (initdb + pg_ctl in a temp dir, fsync on), N
`careeredge-cloud collect` processes on one shared subscription, and simulated devices: the real
device store and sync agent (tests/support/simulated_fleet.py), 100 per process, each
with its own store, client id and persistent session. Device stores live on tmpfs (/dev/shm) when
there is one: real devices write their own SD cards, not the server's disk.

Runs (the JSON has the headline 1,000-device run's `records_per_s`, `lost`, `duplicates` at its top
level, every other run under its own key):
- capacity: devices x collectors, stores filled beforehand; records/s from the first row stored to
  the last (and the wall time from the agents' start), collector/broker/PostgreSQL CPU and peak RSS;
- sqlite_vs_postgresql: the same run with one collector on each engine, and their ratio;
- kill9: a collector killed with SIGKILL at ~30% and restarted 2 s later (systemd's Restart=);
- outage: devices produce at a steady rate; p50/p95 delay created -> stored; every collector is
  stopped for --outage-s, then started; time to drain the backlog; every row checked;
- poison: 1,000 poison messages mixed with 10,000 good ones through one collector.
`lost` = rows a device made that the store lacks; `duplicates` = rows stored more than once
(COUNT(*) - COUNT(DISTINCT (device_id, uuid))); `redelivered` = records that arrived again (a
redelivery or a device retry) and were absorbed by the idempotent insert.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psutil  # noqa: E402

from cloud.collector.storage import open_storage  # noqa: E402
from shared.mqtt.client import BrokerSettings  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.poison import encoded, good_batch, poison_messages  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.simulated_fleet import (  # noqa: E402
    MAX_AGENTS_PER_PROCESS,
    CollectorProcess,
    FleetWorker,
    build_device_stores,
    device_ids,
    load_rows,
)

BROKER_CONFIG = REPO_ROOT / "systemd" / "mosquitto-fleet.conf"
BATCH_SIZE = 200


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def broker_limits() -> str:
    """The queue and packet limits of the shipped broker config (listener, paths and auth are the bench's)."""
    keep = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages", "max_packet_size", "autosave_interval")
    lines = [line for line in BROKER_CONFIG.read_text().splitlines() if line.split(" ")[0] in keep]
    return "\n".join(lines) + "\n"


def wait_until(condition, timeout: float, what: str, interval: float = 0.25) -> float:
    reached = wait_for(condition, timeout, interval)
    if reached is None:
        raise SystemExit(f"bench: timed out after {timeout:.0f}s waiting for {what}")
    return reached


def wait_for(condition, timeout: float, interval: float = 0.25) -> float | None:
    """The monotonic time the condition held, or None when it did not within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    return None


class ResourceMeter:
    """CPU seconds and peak RSS of named process groups, sampled in the background."""

    def __init__(self):
        self.groups: dict[str, list[psutil.Process]] = {}
        self.cpu_start: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.peak_rss: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.started = time.monotonic()

    def watch(self, group: str, pid: int, children: bool = False) -> None:
        try:
            process = psutil.Process(pid)
            processes = [process, *(process.children(recursive=True) if children else [])]
        except psutil.Error:
            return
        for p in processes:
            self.groups.setdefault(group, []).append(p)
            try:
                cpu = p.cpu_times()
                self.cpu_start.setdefault(p.pid, cpu.user + cpu.system)
            except psutil.Error:
                pass

    def start(self) -> ResourceMeter:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for group, processes in list(self.groups.items()):
                rss = 0
                for p in processes:
                    try:
                        rss += p.memory_info().rss
                        cpu = p.cpu_times()
                        self.cpu_last[p.pid] = cpu.user + cpu.system
                    except psutil.Error:
                        continue
                self.peak_rss[group] = max(self.peak_rss.get(group, 0), rss)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self.started
        report = {}
        for group, processes in self.groups.items():
            cpu = sum(self.cpu_last.get(p.pid, 0.0) - self.cpu_start.get(p.pid, 0.0) for p in processes)
            report[group] = {
                "cpu_s": round(cpu, 1),
                "cores": round(cpu / wall, 2) if wall else None,
                "peak_rss_mb": round(self.peak_rss.get(group, 0) / 2**20, 1),
            }
        return report


class Bench:
    def __init__(self, work: Path, device_root: Path, postgres: Postgres):
        self.work = work
        self.device_root = device_root
        self.postgres = postgres
        self.run_number = 0

    def store_url(self, engine: str) -> str:
        self.run_number += 1
        if engine == "postgresql":
            return self.postgres.create_database(f"bench_{self.run_number}")
        return str(self.work / f"run-{self.run_number}" / "collector.sqlite")

    def fleet_run(
        self,
        devices: int,
        collectors: int,
        engine: str = "postgresql",
        rows_total: int = 100_000,
        kill9_at: float | None = None,
    ) -> dict:
        """Stores filled beforehand, then all agents start: how fast does the backlog reach storage?"""
        rows_per_device = max(1, rows_total // devices)
        label = f"{devices} devices, {collectors} collector(s), {engine}" + (", kill -9" if kill9_at else "")
        log(f"{label}: {rows_per_device} rows per device")
        root = Path(tempfile.mkdtemp(prefix="fleet-", dir=self.device_root))
        ids = device_ids(devices)
        build_device_stores(root, ids, 0)
        total = devices * rows_per_device
        url = self.store_url(engine)
        storage = open_storage(url)
        storage.open()
        with ExitStack() as stack:
            broker, procs, workers = self.connected_fleet(url, collectors, root, ids, stack)
            meter = self.meter(broker, procs, workers, engine).start()
            # Every device gets its backlog at once; the clock runs from here to the last row stored.
            # (Loaded from this process: the workers' GIL belongs to their agents.)
            loaded_at = datetime.now(UTC)
            sent = load_rows(root, ids, rows_per_device)
            load_s = (datetime.now(UTC) - loaded_at).total_seconds()
            killed_at = None
            if kill9_at is not None:
                wait_until(lambda: storage.prediction_count() >= total * kill9_at, 600, "the kill point", 0.05)
                procs[0].kill9()
                killed_at = storage.prediction_count()
                log(f"{label}: killed collector-0 (SIGKILL) at {killed_at}/{total} rows; restarting in 2 s")
                time.sleep(2)  # systemd RestartSec=2
                procs[0].start()
            wait_until(lambda: storage.prediction_count() >= total, 1800, f"{total} rows stored")
            resources = meter.stop()
        count, first, last = storage.received_range()
        delays = storage.delivery_delays_s()
        result = {
            "devices": devices,
            "collectors": collectors,
            "engine": engine,
            "records": total,
            # End to end: from the rows appearing in the device stores to the last one committed.
            "records_per_s": round(total / (last - loaded_at).total_seconds(), 1),
            "seconds": round((last - loaded_at).total_seconds(), 2),
            "load_s": round(load_s, 2),
            "intake_records_per_s": round(count / (last - first).total_seconds(), 1) if last > first else None,
            "delay_p50_s": round(statistics.median(delays), 2),
            "delay_p95_s": round(percentile(delays, 95), 2),
            **self.check(storage, sent, procs),
            "resources": resources,
        }
        if killed_at is not None:
            result["killed_at_rows"] = killed_at
        storage.close()
        shutil.rmtree(root, ignore_errors=True)
        log(f"{label}: {result['records_per_s']} records/s, lost {result['lost']}, duplicates {result['duplicates']}")
        return result

    def outage_run(self, devices: int, collectors: int, rate: float, steady_s: float, outage_s: float) -> dict:
        """Steady load, then every collector down for `outage_s`, then back: delay, drain time, losses."""
        log(f"outage: {devices} devices at {rate:.0f} predictions/s, {collectors} collectors, down {outage_s:.0f}s")
        root = Path(tempfile.mkdtemp(prefix="fleet-", dir=self.device_root))
        ids = device_ids(devices)
        build_device_stores(root, ids, 0)
        url = self.store_url("postgresql")
        storage = open_storage(url)
        storage.open()
        with ExitStack() as stack:
            broker, procs, workers = self.connected_fleet(url, collectors, root, ids, stack)
            meter = self.meter(broker, procs, workers, "postgresql").start()
            total_s = steady_s + outage_s + 3600
            for worker in workers:
                worker.call("produce", rate / len(workers), total_s)
            time.sleep(steady_s)
            steady_stored = storage.prediction_count()
            steady_delays = storage.delivery_delays_s()
            log(f"outage: stopping every collector after {steady_stored} rows")
            for proc in procs:
                proc.stop()
            time.sleep(outage_s)
            made_before_restart = sum(w.call("made") for w in workers)
            restarted = time.monotonic()
            for proc in procs:
                proc.start()
            # Not fatal: a row that never arrives is reported as lost, with the figures around it.
            patience = max(600.0, 2 * outage_s)
            drained = wait_for(lambda: storage.prediction_count() >= made_before_restart, patience, 0.5)
            drain_s = None if drained is None else drained - restarted
            log(f"outage: {made_before_restart} rows made before the restart, drained in {drain_s}s")
            time.sleep(10)
            made: dict[str, list] = {}
            for worker in workers:
                made.update(worker.call("produced"))
            total = sum(len(u) for u in made.values())
            wait_for(lambda: storage.prediction_count() >= total, 300, 0.5)
            resources = meter.stop()
        sent = {d: set(u) for d, u in made.items()}
        result = {
            "devices": devices,
            "collectors": collectors,
            "rate_per_s": rate,
            "outage_s": outage_s,
            "records": total,
            "steady_delay_p50_s": round(statistics.median(steady_delays), 3) if steady_delays else None,
            "steady_delay_p95_s": round(percentile(steady_delays, 95), 3) if steady_delays else None,
            "backlog_rows": made_before_restart - steady_stored,
            "drain_s": None if drain_s is None else round(drain_s, 1),
            "drain_records_per_s": None if not drain_s else round((made_before_restart - steady_stored) / drain_s, 1),
            **self.check(storage, sent, procs),
            "broker_peak_rss_mb": resources.get("broker", {}).get("peak_rss_mb"),
            "resources": resources,
        }
        storage.close()
        shutil.rmtree(root, ignore_errors=True)
        log(f"outage: lost {result['lost']}, duplicates {result['duplicates']}, drain {result['drain_s']}s")
        return result

    # --- parts ---------------------------------------------------------------------------------------

    def connected_fleet(self, url: str, collectors: int, root: Path, ids: list[str], stack: ExitStack):
        """A broker, `collectors` collector processes and every device connected (all closed by `stack`)."""
        broker = stack.enter_context(Mosquitto(self.work / f"broker-{self.run_number}", extra_config=broker_limits()))
        settings = BrokerSettings(host=broker.host, port=broker.port, reconnect_min_s=1, reconnect_max_s=5)
        procs = self.start_collectors(url, settings, collectors, stack)
        workers = self.start_workers(root, ids, settings, stack)
        for worker in workers:
            worker.call("start", 0.0)
        wait_until(lambda: sum(w.call("connected") for w in workers) == len(ids), 300, "every device connected")
        return broker, procs, workers

    def start_collectors(self, url: str, settings: BrokerSettings, count: int, stack: ExitStack) -> list:
        procs = [
            CollectorProcess(url, settings, f"bench-collector-{i}", self.work / f"collectors-{self.run_number}")
            for i in range(count)
        ]
        for proc in procs:
            proc.start()
            stack.callback(proc.stop)
        for proc in procs:
            proc.wait_subscribed()
        return procs

    def start_workers(self, root: Path, ids: list[str], settings: BrokerSettings, stack: ExitStack) -> list:
        count = -(-len(ids) // min(100, MAX_AGENTS_PER_PROCESS))  # 100 agents per process at most
        workers = [FleetWorker(root, ids[i::count], settings, batch_size=BATCH_SIZE) for i in range(count)]
        for worker in workers:
            stack.callback(worker.stop)
        return workers

    def meter(self, broker, procs, workers, engine: str) -> ResourceMeter:
        meter = ResourceMeter()
        meter.watch("broker", broker.process.pid)
        for proc in procs:
            meter.watch("collectors", proc.pid)
        for worker in workers:
            meter.watch("devices", worker.pid)
        if engine == "postgresql":
            pid = int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])
            meter.watch("postgresql", pid, children=True)
        return meter

    @staticmethod
    def check(storage, sent: dict[str, set], procs) -> dict:
        expected = {(d, u) for d, uuids in sent.items() for u in uuids}
        stored = storage.prediction_keys()
        count = storage.prediction_count()
        redelivered = 0
        for proc in procs:
            try:
                redelivered += json.loads(proc.stats_path.read_text())["duplicates"]
            except (OSError, ValueError, KeyError):
                pass
        return {
            "stored": count,
            "lost": len(expected - stored),
            "duplicates": count - len(stored),
            "unexpected": len(stored - expected),
            "redelivered": redelivered,
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_poison_mix(
    store_url: str,
    workdir: Path,
    good: int = 10_000,
    poison: int = 1_000,
    extra_broker_config: str = "",
) -> dict:
    """One collector, `poison` poison messages shuffled among `good` one-record batches.

    Returns crashes (collector exits), stored rows, dead letters and their reasons. Importable:
    scripts/bench_faults.py can call it with its own store.
    """
    from tests.sync.fleet import RawClient

    kinds = poison_messages("bench-pi")
    messages = [("good", None) for _ in range(good)] + [("poison", kinds[i % len(kinds)]) for i in range(poison)]
    random.Random(21).shuffle(messages)
    storage = open_storage(store_url)
    storage.open()
    with Mosquitto(Path(workdir) / "poison-broker", extra_config=extra_broker_config or broker_limits()) as broker:
        settings = BrokerSettings(host=broker.host, port=broker.port)
        collector = CollectorProcess(store_url, settings, "poison-collector", Path(workdir) / "poison")
        collector.start()
        collector.wait_subscribed()
        probe = RawClient(broker)
        started = time.monotonic()
        for kind, spec in messages:
            if kind == "good":
                topic, payload = "careeredge/v1/devices/bench-pi/predictions", encoded(good_batch("bench-pi"))
            else:
                topic, payload, _ = spec
            probe.client.publish(topic, payload, qos=1)
        wait_until(
            lambda: storage.prediction_count() >= good and sum(storage.rejection_counts().values()) >= poison,
            600,
            "every poison message dead-lettered and every good one stored",
        )
        elapsed = time.monotonic() - started
        crashed = collector.process.poll() is not None
        probe.close()
        collector.stop()
    result = {
        "good_messages": good,
        "poison_messages": poison,
        "crashes": int(crashed) + collector.log_path.read_text().count("Traceback"),
        "stored": storage.prediction_count(),
        "dead_lettered": len(storage.dead_letters()),
        "dead_letter_reasons": storage.rejection_counts(),
        "messages_per_s": round((good + poison) / elapsed, 1),
    }
    storage.close()
    return result


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
    }


def median_of(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="small smoke run: 50 devices, a 20 s outage")
    parser.add_argument("--fleet", type=int, default=1000, help="devices in the headline, kill -9 and outage runs")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the headline runs (medians are quoted)")
    parser.add_argument("--devices", default="10,100,1000", help="device counts of the capacity matrix")
    parser.add_argument("--collectors", default="1,2,4", help="collector counts of the capacity matrix")
    parser.add_argument("--rows", type=int, default=100_000, help="records per capacity run")
    parser.add_argument("--outage-s", type=float, default=300.0)
    # 200/s across 1,000 devices: one prediction every 5 s on each, far busier than a real branch's
    # Pi. Each device then sends small batches at its own pace, so the outage queues ~60,000 messages.
    parser.add_argument("--outage-rate", type=float, default=200.0, help="predictions/s across the fleet")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: matrix,kill9,outage,poison,sqlite")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    headline_devices = 50 if args.quick else args.fleet
    if args.quick:
        args.devices, args.collectors, args.rows, args.outage_s, args.repeats = "10,50", "1,2", 10_000, 20.0, 1
        args.outage_rate = 50.0

    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    shm = Path("/dev/shm")
    device_root = Path(tempfile.mkdtemp(prefix="bench-fleet-devices-", dir=shm if shm.is_dir() else None))
    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def save() -> None:  # after every part: a long run interrupted late keeps what it measured
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")

    # Durable PostgreSQL: what a production server runs (fsync, synchronous_commit on).
    postgres = Postgres(settings={"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"})
    try:
        with postgres:
            bench = Bench(work, device_root, postgres)
            headline = [bench.fleet_run(headline_devices, 2, rows_total=args.rows) for _ in range(args.repeats)]
            results["headline_runs"] = headline
            results["records_per_s"] = median_of(headline, "records_per_s")
            results["lost"] = sum(r["lost"] for r in headline)
            results["duplicates"] = sum(r["duplicates"] for r in headline)
            results["headline"] = f"{headline_devices} devices, 2 collectors, PostgreSQL; median of {len(headline)}"
            save()
            if "sqlite" not in skip:
                pg = [bench.fleet_run(headline_devices, 1, "postgresql", args.rows) for _ in range(args.repeats)]
                lite = [bench.fleet_run(headline_devices, 1, "sqlite", args.rows) for _ in range(args.repeats)]
                pg_rate, lite_rate = median_of(pg, "records_per_s"), median_of(lite, "records_per_s")
                results["sqlite_vs_postgresql"] = {
                    "postgresql_records_per_s": pg_rate,
                    "sqlite_records_per_s": lite_rate,
                    "postgresql_to_sqlite_ratio": round(pg_rate / lite_rate, 2) if pg_rate and lite_rate else None,
                    "runs": {"postgresql": pg, "sqlite": lite},
                }
                save()
            if "kill9" not in skip:
                kills = [
                    bench.fleet_run(headline_devices, 2, kill9_at=0.3, rows_total=args.rows)
                    for _ in range(args.repeats)
                ]
                results["kill9"] = {
                    "lost": sum(r["lost"] for r in kills),
                    "duplicates": sum(r["duplicates"] for r in kills),
                    "records_per_s": median_of(kills, "records_per_s"),
                    "runs": kills,
                }
                save()
            if "matrix" not in skip:
                matrix = {}
                for devices in map(int, args.devices.split(",")):
                    for collectors in map(int, args.collectors.split(",")):
                        matrix[f"{devices}x{collectors}"] = bench.fleet_run(devices, collectors, rows_total=args.rows)
                        results["capacity"] = matrix
                        save()
            if "poison" not in skip:
                log("poison: 1,000 poison messages among 10,000 good ones")
                results["poison"] = run_poison_mix(bench.store_url("postgresql"), work)
                save()
            if "outage" not in skip:
                results["outage"] = bench.outage_run(headline_devices, 2, args.outage_rate, 30.0, args.outage_s)
    finally:
        shutil.rmtree(device_root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = {
        "records_per_s": ">= 5000 (1,000 devices, 2 collectors, PostgreSQL, 2 cores)",
        "lost": 0,
        "duplicates": 0,
        "kill9": "0 lost, 0 duplicated",
        "outage": "0 lost after 5 minutes down; drain time reported",
    }
    save()
    print_table(results)


def print_table(results: dict) -> None:
    rows = [("headline", results["headline"]), ("records/s", results["records_per_s"])]
    rows += [("lost", results["lost"]), ("duplicates", results["duplicates"])]
    if "sqlite_vs_postgresql" in results:
        s = results["sqlite_vs_postgresql"]
        rows.append(
            (
                "1 collector: PostgreSQL / SQLite",
                f"{s['postgresql_records_per_s']} / {s['sqlite_records_per_s']} = {s['postgresql_to_sqlite_ratio']}",
            )
        )
    if "kill9" in results:
        rows.append(("kill -9: lost / duplicates", f"{results['kill9']['lost']} / {results['kill9']['duplicates']}"))
    for key, run in results.get("capacity", {}).items():
        rows.append(
            (
                f"capacity {key}",
                f"{run['records_per_s']} records/s, collectors {run['resources'].get('collectors', {}).get('cores')} cores",
            )
        )
    if "poison" in results:
        p = results["poison"]
        rows.append(
            ("poison: crashes / stored / dead-lettered", f"{p['crashes']} / {p['stored']} / {p['dead_lettered']}")
        )
    if "outage" in results:
        o = results["outage"]
        rows.append(("outage: lost / drain s / backlog", f"{o['lost']} / {o['drain_s']} / {o['backlog_rows']}"))
        rows.append(("steady delay p50 / p95 s", f"{o['steady_delay_p50_s']} / {o['steady_delay_p95_s']}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
