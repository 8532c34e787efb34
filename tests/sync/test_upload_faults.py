"""The upload side under bad luck: a store that stays locked, a restart that must not forget what the
buffer cap dropped, and a state file that must not wear out an SD card."""

from __future__ import annotations

import sqlite3
import time

from device.store import PredictionStore
from device.sync.agent import STATE_FILE, SyncAgent
from device.sync.status import agent_running
from device.sync.upload import UploadPipeline
from tests.sync.conftest import fill_store
from tests.sync.fleet import make_agent, start_collector, unsynced, wait_until
from tests.sync.test_upload_pipeline import Clock, MemoryTransport


def test_a_store_locked_longer_than_its_timeout_does_not_end_uploads(broker, tmp_path):
    store_path = tmp_path / "pi-1.db"
    fill_store(store_path, 50)
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    agent = make_agent(broker, tmp_path)
    agent._store_factory = lambda: PredictionStore(store_path, busy_timeout_ms=100)
    locker = sqlite3.connect(store_path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock far longer than 100 ms
    agent.start()
    try:
        wait_until(lambda: storage.prediction_count() == 50, 20, "the collector to store the batches")
        wait_until(lambda: agent.state()["upload"]["last_error"], 10, "the lock error in the status")
        state = agent.state()
        assert "locked" in state["upload"]["last_error"] and state["upload"]["alive"]
        assert unsynced(store_path) == 50
        health = healthz_with(agent, tmp_path)
        assert health["status"] == "degraded" and health["sync"]["upload_failing"]
        assert "locked" in health["sync"]["last_error"]
        locker.execute("ROLLBACK")
        wait_until(lambda: unsynced(store_path) == 0, 30, "uploads to resume once the lock is gone")
        assert agent.state()["upload"]["alive"] and agent.state()["upload"]["failing"] is False
        assert healthz_with(agent, tmp_path)["sync"]["ok"]
    finally:
        locker.close()
        agent.stop()
        collector.stop()


def healthz_with(agent: SyncAgent, tmp_path) -> dict:
    """/healthz of a daemon whose in-process sync agent is `agent` (no model needed for this part)."""
    from device.daemon import Daemon
    from device.web import create_app
    from tests.daemon.conftest import make_config

    config = make_config(tmp_path / "daemon", None)
    config.override("sync", enabled=True)
    daemon = Daemon(config, load_model=False, open_store=False)
    daemon.add_status_provider("sync", lambda: {"enabled": True, **agent.state()})
    return create_app(daemon).test_client().get("/healthz").get_json()


def test_rows_dropped_by_the_buffer_cap_are_reported_even_after_a_restart(tmp_path):
    clock = Clock()
    transport = MemoryTransport(clock)
    transport.connected_since = None  # offline
    ledger = tmp_path / "models" / "upload_state.json"
    with PredictionStore(tmp_path / "device.db") as store:
        fill_store(store.path, 30)
        first = UploadPipeline(
            store, transport, "pi-1", batch_size=10, buffer_cap_rows=20, clock=clock, ledger_path=ledger
        )
        first.step()
        assert first.counters.dropped_rows == 10

        restarted = UploadPipeline(
            store, transport, "pi-1", batch_size=10, buffer_cap_rows=20, clock=clock, ledger_path=ledger
        )
        transport.reconnect()
        restarted.step()
        assert transport.sent[0]["dropped_rows"] == 10
        restarted.confirm(transport.sent[0]["batch_id"])
        restarted.step()
        assert all(batch["dropped_rows"] == 0 for batch in transport.sent[1:])
        assert restarted.counters.dropped_rows == 10  # the lifetime total survives too


def test_the_state_file_is_rewritten_on_change_not_every_few_seconds(broker, tmp_path):
    agent: SyncAgent = make_agent(broker, tmp_path).start()
    path = agent.settings.models_dir / STATE_FILE
    try:
        assert agent.wait_connected(10)
        wait_until(lambda: path.exists() and '"broker_connected": true' in path.read_text(), 10, "connected state")
        writes, inode = 0, path.stat().st_ino
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:  # idle: nothing changes, nothing is written
            if path.stat().st_ino != inode:
                writes, inode = writes + 1, path.stat().st_ino
            time.sleep(0.05)
        assert writes == 0
        assert agent_running(agent.settings.models_dir)  # liveness comes from the agent's lock, not the file's age
        broker.stop()
        wait_until(lambda: '"broker_connected": false' in path.read_text(), 10, "the disconnection written")
    finally:
        agent.stop()
    assert not agent_running(agent.settings.models_dir)
