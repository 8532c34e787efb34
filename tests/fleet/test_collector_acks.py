"""The collector's end-to-end acknowledgements: after a commit, each device hears which of its batches
are in the store (and which were kept as dead letters), on its own `acks` topic."""

from __future__ import annotations

import json

from cloud.collector.collector import Collector
from shared.mqtt.client import BrokerSettings
from shared.mqtt.contract import PREDICTION_ACK, Topics
from tests.support.poison import encoded, good_batch, poison_messages
from tests.sync.fleet import RawClient, wait_until


def test_committed_and_dead_lettered_batches_are_acknowledged_per_device(storage):
    collector = Collector(storage, BrokerSettings())
    first, second, other = good_batch("pi-1"), good_batch("pi-1"), good_batch("pi-2")
    for batch in (first, second, other, first):  # the last one is a redelivery
        assert collector.handle(Topics.device_predictions(batch["device_id"]), encoded(batch)).startswith(
            ("stored", "dup")
        )
    poison_topic, poison_payload, _ = poison_messages("pi-1")[0]
    assert collector.handle(poison_topic, poison_payload).startswith("rejected:")
    assert collector.handle(Topics.device_predictions("pi-1"), b"{not json").startswith("rejected:")

    acks = {topic: PREDICTION_ACK.decode(payload) for topic, payload in collector.take_acks()}
    assert set(acks) == {Topics.device_acks("pi-1"), Topics.device_acks("pi-2")}
    mine = acks[Topics.device_acks("pi-1")]
    assert mine["committed"] == [first["batch_id"], second["batch_id"], first["batch_id"]]
    assert mine["dead_lettered"] == [json.loads(poison_payload)["batch_id"]]  # the unreadable one names none
    assert acks[Topics.device_acks("pi-2")]["committed"] == [other["batch_id"]]
    assert collector.take_acks() == []


def test_a_running_collector_publishes_the_acknowledgement_after_the_commit(storage, broker):
    collector = Collector(storage, BrokerSettings(host=broker.host, port=broker.port), client_id="acks-test")
    probe = RawClient(broker)
    probe.subscribe(Topics.device_acks("pi-1"))
    collector.start()
    try:
        assert collector.subscribed.wait(10)
        batch = good_batch("pi-1", records=3)
        probe.publish(Topics.device_predictions("pi-1"), encoded(batch))
        wait_until(lambda: probe.received(Topics.device_acks("pi-1")), 10, "the acknowledgement")
        ack = PREDICTION_ACK.decode(probe.received(Topics.device_acks("pi-1"))[0])
        assert ack["committed"] == [batch["batch_id"]] and storage.prediction_count() == 3
        assert collector.snapshot()["acks_sent"] == 1
    finally:
        collector.stop()
        probe.close()
