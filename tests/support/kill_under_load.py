"""kill -9 a `careeredge serve` while clients post predictions, again and again, on one database.

Every prediction answered 200 with `stored: true` must be in the database exactly once afterwards,
and the database must pass `PRAGMA integrity_check`. Used by tests/daemon/test_daemon_process.py
(5 kills) and scripts/bench_faults.py (20).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

DS_TEXT = "Data analyst: statistics, SQL, pandas, dashboards and A/B testing."


@dataclass
class KillReport:
    kills: int
    acknowledged: int
    stored: int
    lost: int
    duplicated: int
    integrity: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def kill_under_load(
    start_daemon: Callable[[Path], object],
    db_path: Path,
    kills: int,
    answers_per_round: int = 40,
    clients: int = 3,
) -> KillReport:
    """`start_daemon(db_path)` returns something with `.url` and `.process` (a running daemon)."""
    acknowledged: list[str] = []
    lock = threading.Lock()

    def client(url: str, stop: threading.Event) -> None:
        session = requests.Session()
        while not stop.is_set():
            key = str(uuid.uuid4())
            try:
                response = session.post(url + "api/v1/predict", json={"text": DS_TEXT, "id": key}, timeout=5)
            except requests.RequestException:
                continue  # the daemon died mid-request: no 200, no promise
            if response.status_code == 200 and response.json()["stored"]:
                with lock:
                    acknowledged.append(key)

    for round_number in range(kills):
        daemon = start_daemon(db_path)
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(daemon.url, stop)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        before = len(acknowledged)
        deadline = time.monotonic() + 30
        while len(acknowledged) < before + answers_per_round and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.process.kill()  # SIGKILL: no handler, no flush, no goodbye
        daemon.process.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        if len(acknowledged) < before + answers_per_round:
            raise AssertionError(f"round {round_number}: the daemon stopped answering")

    with sqlite3.connect(db_path) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stored = [row[0] for row in conn.execute("SELECT uuid FROM predictions")]
    conn.close()
    return KillReport(
        kills=kills,
        acknowledged=len(acknowledged),
        stored=len(stored),
        lost=len(set(acknowledged) - set(stored)),
        duplicated=len(stored) - len(set(stored)),
        integrity=integrity,
    )
