"""Prediction logs: device store -> real mosquitto -> collector, nothing lost, nothing twice."""

from __future__ import annotations

import logging

from shared.mqtt.contract import STATUS_OFFLINE, STATUS_ONLINE, Topics
from tests.sync.conftest import fill_store
from tests.sync.fleet import RawClient, make_agent, start_collector, unsynced, uuids_in_collector, wait_until


def test_a_thousand_predictions_arrive_once_each(broker, tmp_path):
    uuids = fill_store(tmp_path / "pi-1.db", 1000)
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    agent = make_agent(broker, tmp_path).start()
    try:
        wait_until(lambda: unsynced(tmp_path / "pi-1.db") == 0, 30, "all rows marked synced")
        wait_until(lambda: storage.prediction_count() == 1000, 10, "collector stored 1000 rows")
        stored = uuids_in_collector(storage)
        assert sorted(stored) == sorted(uuids)
        assert collector.snapshot()["duplicates"] == 0
        assert collector.snapshot()["rejected"] == {}
        state = agent.state()
        assert state["broker_connected"] and state["acked_rows"] == 1000 and state["last_ack_at"]
    finally:
        agent.stop()
        collector.stop()


def test_broker_restart_mid_sync_loses_nothing_and_stores_each_row_once(broker, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="careeredge.sync")
    store_path = tmp_path / "pi-1.db"
    first = fill_store(store_path, 6000)
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    agent = make_agent(broker, tmp_path, batch_size=20).start()
    try:
        wait_until(lambda: agent.counters.acked_rows >= 300, 20, "the first acknowledgements")
        broker.stop()  # mid-sync: batches are in flight, most rows still unsynced
        assert unsynced(store_path) > 0
        wait_until(lambda: not agent.state()["broker_connected"], 10, "agent to notice the broker is gone")
        # While the broker is away, the buffer keeps growing and the state shows it.
        second = fill_store(store_path, 500)
        wait_until(lambda: (agent.state()["buffer_rows"] or 0) >= 500, 10, "buffer size on the status page")
        broker.start()
        wait_until(lambda: unsynced(store_path) == 0, 60, "every row synced after the restart")
        wait_until(lambda: storage.prediction_count() >= 6500, 20, "collector to store everything")
        assert sorted(uuids_in_collector(storage)) == sorted(first + second)
    finally:
        agent.stop()
        collector.stop()
    # Home Assistant rule: one warning when the broker goes away, one when it is back.
    messages = [r.getMessage() for r in caplog.records if r.name == "careeredge.sync"]
    assert sum("is unavailable" in m for m in messages) == 1, messages
    assert sum("is available again" in m for m in messages) == 1, messages


def test_status_topic_is_online_while_running_and_offline_after(broker, tmp_path):
    probe = RawClient(broker)
    topic = Topics.device_status("pi-1")
    agent = make_agent(broker, tmp_path).start()
    try:
        assert agent.wait_connected(10)
        probe.subscribe(topic)
        wait_until(lambda: probe.received(topic)[-1:] == [STATUS_ONLINE], 10, "retained online")
    finally:
        agent.stop()
    wait_until(lambda: probe.received(topic)[-1:] == [STATUS_OFFLINE], 10, "offline after a clean stop")
    probe.close()


def test_rows_wait_on_the_device_until_a_collector_exists(broker, tmp_path):
    """PUBACK 'no matching subscribers' is not delivery: the device keeps the rows and retries."""
    uuids = fill_store(tmp_path / "pi-1.db", 50)
    agent = make_agent(broker, tmp_path).start()
    try:
        wait_until(lambda: agent.counters.published_rows >= 50, 10, "a first publish attempt")
        assert unsynced(tmp_path / "pi-1.db") == 50
        collector, storage = start_collector(broker, tmp_path / "cloud.db")
        wait_until(lambda: unsynced(tmp_path / "pi-1.db") == 0, 20, "rows synced once a collector listens")
        wait_until(lambda: storage.prediction_count() == 50, 10, "collector stored them")
        assert sorted(uuids_in_collector(storage)) == sorted(uuids)
        collector.stop()
    finally:
        agent.stop()


def test_buffer_cap_drops_the_oldest_rows_and_reports_them(broker, tmp_path):
    store_path = tmp_path / "pi-1.db"
    uuids = fill_store(store_path, 300)
    broker.stop()  # offline device: the buffer only grows
    agent = make_agent(broker, tmp_path, buffer_cap_rows=200).start()
    try:
        wait_until(lambda: agent.counters.dropped_rows == 100, 15, "cap enforcement")
        assert unsynced(store_path) == 200
        broker.start()
        collector, storage = start_collector(broker, tmp_path / "cloud.db")
        wait_until(lambda: storage.prediction_count() == 200, 30, "the 200 newest rows to arrive")
        assert sorted(uuids_in_collector(storage)) == sorted(uuids[100:])
        assert storage.rows_dropped_on_devices() == {"pi-1": 100}
        collector.stop()
    finally:
        agent.stop()


def test_a_second_agent_for_the_same_device_is_refused(broker, tmp_path):
    import pytest

    from shared.errors import UserError

    agent = make_agent(broker, tmp_path).start()
    try:
        with pytest.raises(UserError, match="another sync agent"):
            make_agent(broker, tmp_path).start()
    finally:
        agent.stop()
    make_agent(broker, tmp_path).start().stop()  # the lock is released on stop
