"""Simulated devices for fleet tests and benches: the real device store and sync agent, many per process.

Each simulated device is what a Pi runs: its own SQLite prediction store (device.store) and its own
`SyncAgent` (device.sync) with its own MQTT client id and persistent session. Only OTA is off.
Stores are filled fast by copying one template store made through the public `PredictionStore`
API and giving every copy fresh uuids, so a thousand devices are ready in seconds.

`FleetWorker` runs a share of the fleet in a child process, driven over a pipe. One process holds
at most MAX_AGENTS_PER_PROCESS agents: paho's network loop uses select(), which cannot watch a
descriptor numbered above 1023, and each agent holds about seven (its socket, paho's wake-up pipe,
the store's database, WAL and shared-memory files, its lock file). Past that, agents quietly fail
to connect. (A real device runs one agent: this is a limit of simulating many in one process.)

In those worker processes the agent's housekeeping runs every 30 s instead of every 2 s (buffer
count) and 5 s (buffer-cap check): on a real fleet each device pays for that on its own CPU, while
here a thousand of them would take a core of the machine whose server side is being measured.
Everything on the sync path (reading the store, encoding and validating batches, publishing,
marking rows synced on the collector's acknowledgement) is the device code as shipped.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from device.store import PredictionStore, utc_now
from device.sync.agent import SyncAgent, SyncSettings
from shared.mqtt.client import BrokerSettings

MAX_AGENTS_PER_PROCESS = 120
SIMULATED_HOUSEKEEPING_S = 30.0
LABELS = ("Software Engineering", "Data Science")
POSTING = "Senior data engineer: python, sql, spark and kubernetes; build pipelines for analytics teams. "


def device_ids(count: int, prefix: str = "sim") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(count)]


def prediction(i: int) -> dict:
    label = i % 2
    return {
        "source": "api",
        "model_name": "model_a_v1",
        "model_version": "1",
        "label": label,
        "label_name": LABELS[label],
        "probabilities": [0.8, 0.2] if label == 0 else [0.3, 0.7],
        "latency_ms": 38.0 + (i % 7),
        "text": f"posting {i}. " + POSTING * 3,
    }


def store_path(root: Path, device_id: str) -> Path:
    return Path(root) / device_id / "predictions.db"


def build_device_stores(root: Path, ids: list[str], rows_per_device: int) -> dict[str, set[str]]:
    """One store per device holding `rows_per_device` unsynced predictions; returns their uuids."""
    template = Path(root) / "template.db"
    PredictionStore(template).close()  # an empty store at the current schema
    for device_id in ids:
        path = store_path(root, device_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
    template.unlink()
    return load_rows(root, ids, rows_per_device)


def load_rows(root: Path, ids: list[str], rows_per_device: int) -> dict[str, set[str]]:
    """Add `rows_per_device` new predictions (fresh uuids, created now) to each device's store.

    The rows are made once through the public PredictionStore API, then copied into each store in
    one transaction with their own uuids: a whole fleet gets a backlog within a second or two, so a
    bench measures the sync path, not the inserts.
    """
    sample = Path(root) / f"sample-{uuid.uuid4().hex[:8]}.db"
    with PredictionStore(sample) as store:
        for i in range(rows_per_device):
            store.insert(prediction(i))
    with sqlite3.connect(sample) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(predictions)")]
        rows = db.execute(f"SELECT {', '.join(columns)} FROM predictions ORDER BY rowid").fetchall()
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{sample}{suffix}").unlink(missing_ok=True)
    uuid_at, created_at = columns.index("uuid"), columns.index("created_at")
    insert = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    sent: dict[str, set[str]] = {}
    for device_id in ids:
        now = utc_now()
        fresh = [list(row) for row in rows]
        for row in fresh:
            row[uuid_at], row[created_at] = str(uuid.uuid4()), now
        with sqlite3.connect(store_path(root, device_id), timeout=30) as db:
            db.executemany(insert, fresh)
        db.close()
        sent[device_id] = {row[uuid_at] for row in fresh}
    return sent


def make_agent(
    root: Path, device_id: str, broker: BrokerSettings, batch_size: int = 200, poll_interval_s: float = 1.0
) -> SyncAgent:
    path = store_path(root, device_id)
    settings = SyncSettings(
        device_id=device_id,
        broker=broker,
        channel="stable",
        models_dir=path.parent / "models",
        public_key=None,
        batch_size=batch_size,
        poll_interval_s=poll_interval_s,
    )
    return SyncAgent(settings, store_factory=lambda: PredictionStore(path), close_store=True, enable_ota=False)


class DeviceFleet:
    """Many simulated devices in this process."""

    def __init__(
        self,
        root: Path,
        ids: list[str],
        broker: BrokerSettings,
        batch_size: int = 200,
        poll_interval_s: float = 1.0,
    ):
        if len(ids) > MAX_AGENTS_PER_PROCESS:
            raise ValueError(
                f"{len(ids)} agents in one process; at most {MAX_AGENTS_PER_PROCESS} (see module docstring)"
            )
        self.root = Path(root)
        self.ids = list(ids)
        self.agents = [make_agent(self.root, d, broker, batch_size, poll_interval_s) for d in self.ids]
        self.made = 0  # predictions made by `produce` so far

    def start(self, spread_s: float = 0.0) -> None:
        """Start every agent (spread over `spread_s`, as a fleet that does not boot in one instant)."""
        for agent in self.agents:
            agent.start()
            if spread_s:
                time.sleep(spread_s / len(self.agents))

    def connected(self) -> int:
        return sum(agent.wait_connected(0) for agent in self.agents)

    def acked_rows(self) -> int:
        return sum(agent.counters.acked_rows for agent in self.agents)

    def produce(self, rate_per_s: float, duration_s: float, stop: threading.Event | None = None) -> dict[str, list]:
        """Make predictions at `rate_per_s` across the fleet (random devices), as the daemons would."""
        stores = {d: PredictionStore(store_path(self.root, d)) for d in self.ids}
        made: dict[str, list[str]] = {d: [] for d in self.ids}
        started = time.monotonic()
        count = 0
        try:
            while time.monotonic() - started < duration_s and not (stop and stop.is_set()):
                due = int((time.monotonic() - started) * rate_per_s)
                while count < due:
                    device_id = random.choice(self.ids)
                    made[device_id].append(stores[device_id].insert(prediction(count)))
                    count += 1
                    self.made += 1
                time.sleep(0.01)
        finally:
            for store in stores.values():
                store.close()
        return made

    def stop(self) -> None:
        # In parallel: each agent waits up to a few seconds for its last acknowledgements.
        threads = [threading.Thread(target=agent.stop, kwargs={"timeout": 5}) for agent in self.agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _worker_main(root: str, ids: list[str], host: str, port: int, batch_size: int, poll_s: float, pipe) -> None:
    from device.sync import agent as agent_module
    from device.sync import upload as upload_module

    agent_module.BUFFER_COUNT_INTERVAL_S = upload_module.CAP_CHECK_INTERVAL_S = SIMULATED_HOUSEKEEPING_S
    broker = BrokerSettings(host=host, port=port, reconnect_min_s=1, reconnect_max_s=5)
    fleet = DeviceFleet(Path(root), ids, broker, batch_size, poll_s)
    producing: list[threading.Thread] = []
    produced: dict[str, list] = {}
    stop_producing = threading.Event()
    while True:
        command, *args = pipe.recv()
        if command == "start":
            fleet.start(*args)
            pipe.send(("started", len(ids)))
        elif command == "connected":
            pipe.send(fleet.connected())
        elif command == "acked":
            pipe.send(fleet.acked_rows())
        elif command == "made":
            pipe.send(fleet.made)
        elif command == "produce":
            rate, duration = args
            stop_producing.clear()
            thread = threading.Thread(
                target=lambda r=rate, d=duration: produced.update(fleet.produce(r, d, stop_producing)), daemon=True
            )
            thread.start()
            producing.append(thread)
            pipe.send("producing")
        elif command == "produced":
            stop_producing.set()
            for thread in producing:
                thread.join()
            producing.clear()
            pipe.send({d: sorted(u) for d, u in produced.items()})
            produced.clear()
        elif command == "stop":
            stop_producing.set()
            for thread in producing:
                thread.join()
            fleet.stop()
            pipe.send("stopped")
            return


class FleetWorker:
    """A share of the fleet in a child process, driven over a pipe."""

    def __init__(self, root: Path, ids: list[str], broker: BrokerSettings, batch_size: int = 200, poll_s: float = 1.0):
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main,
            args=(str(root), ids, broker.host, broker.port, batch_size, poll_s, child),
            daemon=True,
        )
        self.process.start()
        self.ids = ids

    def call(self, *command, timeout: float = 600.0):
        self.send(*command)
        return self.receive(command[0], timeout)

    def send(self, *command) -> None:
        self._pipe.send(command)

    def receive(self, command: str, timeout: float = 600.0):
        if not self._pipe.poll(timeout):
            raise TimeoutError(f"fleet worker did not answer {command!r} within {timeout}s")
        return self._pipe.recv()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.call("stop", timeout=120)
            except (TimeoutError, EOFError, BrokenPipeError):
                self.process.kill()
        self.process.join(10)


class CollectorProcess:
    """`careeredge-cloud collect` as its own process, as systemd would run it (kill -9 included)."""

    def __init__(
        self, store_url: str, broker: BrokerSettings, client_id: str, workdir: Path, group: str = "collectors"
    ):
        self.store_url = store_url
        self.broker = broker
        self.client_id = client_id
        self.group = group
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{client_id}.log"
        self.stats_path = self.workdir / f"{client_id}.json"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, extra_args: tuple[str, ...] = ()) -> CollectorProcess:
        repo_root = Path(__file__).resolve().parents[2]
        self.starts += 1
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud.cli",
                "collect",
                "--broker-host",
                self.broker.host,
                "--broker-port",
                str(self.broker.port),
                "--client-id",
                self.client_id,
                "--group",
                self.group,
                "--stats-json",
                str(self.stats_path),
                "--stats-interval",
                "3600",
                *extra_args,
            ],
            cwd=repo_root,
            # The URL carries a password: the environment keeps it out of `ps`.
            env={**os.environ, "CAREEREDGE_COLLECTOR_STORE": self.store_url},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        return self

    def wait_subscribed(self, timeout: float = 60.0) -> None:
        """Until the collector logs that it collects and has had time to SUBSCRIBE."""
        deadline = time.monotonic() + timeout
        marker = "collecting from"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector {self.client_id} exited {self.process.returncode}: {self.log_tail()}")
            if self.log_path.read_text(errors="replace").count(marker) >= self.starts:
                if "connected to MQTT broker" in self.log_path.read_text(errors="replace"):
                    time.sleep(0.5)  # its SUBSCRIBE follows the CONNACK
                    return
            time.sleep(0.1)
        raise TimeoutError(f"collector {self.client_id} did not start within {timeout}s: {self.log_tail()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
