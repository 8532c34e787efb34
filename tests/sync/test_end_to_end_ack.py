"""Delivery is end to end: a row is marked synced only when the collector acknowledges the batch it
committed, so a broker queue that overflows while the collector is away costs re-sends, not rows
(with PUBACK as delivery, 500 of 2,500 rows were lost this way while the device thought them sent)."""

from __future__ import annotations

from tests.sync.conftest import fill_store
from tests.sync.fleet import make_agent, start_collector, unsynced, uuids_in_collector, wait_until

SMALL_QUEUE = "max_queued_messages 20\n"  # far fewer messages than the backlog below


def test_rows_survive_a_broker_queue_overflow_while_the_collector_is_offline(tmp_path):
    from tests.conftest import require
    from tests.support.mosquitto import Mosquitto, mosquitto_binary

    require(mosquitto_binary() is not None, "mosquitto (Debian package `mosquitto`)")
    with Mosquitto(tmp_path / "broker", extra_config=SMALL_QUEUE) as broker:
        collector, storage = start_collector(broker, tmp_path / "cloud.db")  # its session subscribes...
        collector.stop()  # ...and stays on the broker while the collector is away
        store_path = tmp_path / "pi-1.db"
        uuids = fill_store(store_path, 1000)
        agent = make_agent(broker, tmp_path, batch_size=10, ack_timeout_s=2.0).start()
        try:
            wait_until(
                lambda: agent.counters.published_rows >= 240, 30, "three rounds of batches, more than the queue holds"
            )
            assert unsynced(store_path) == 1000, "nothing is synced before the collector has it"
            collector, storage = start_collector(broker, tmp_path / "cloud.db")
            wait_until(lambda: unsynced(store_path) == 0, 60, "every row acknowledged by the collector")
            assert sorted(uuids_in_collector(storage)) == sorted(uuids)
            assert agent.state()["acked_rows"] == 1000
        finally:
            agent.stop()
            collector.stop()
