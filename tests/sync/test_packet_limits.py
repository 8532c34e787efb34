"""Message size: every client sets MQTT's Maximum Packet Size in CONNECT, so an oversized message is
dropped by the broker and never received whole (three 8 MB messages used to reach the agent)."""

from __future__ import annotations

import time

from shared.mqtt.contract import MAX_CHUNK_BYTES, Topics
from tests.sync.fleet import RawClient, make_agent, wait_until

LARGEST_PACKET = MAX_CHUNK_BYTES + 64 * 1024  # a chunk plus topic and properties


def test_the_broker_never_delivers_a_message_bigger_than_the_contract_allows(broker, tmp_path, keys):
    agent = make_agent(broker, tmp_path, public_key=keys["public_path"])
    received: list[tuple[str, int]] = []
    deliver = agent._on_message
    agent.transport.on_message = lambda topic, payload: (
        received.append((topic, len(payload))) or deliver(topic, payload)
    )
    agent.start()
    attacker = RawClient(broker)
    try:
        assert agent.wait_connected(10)
        manifest_topic = Topics.model_manifest("stable")
        # The agent subscribes to the manifest, then publishes its model state: once that is seen, the
        # subscription is in place.
        attacker.subscribe(Topics.device_model("pi-1"))
        wait_until(lambda: attacker.received(Topics.device_model("pi-1")), 10, "the agent's model state")
        for _ in range(3):
            attacker.publish(manifest_topic, b"x" * (8 << 20))
        attacker.publish(manifest_topic, b"{}")  # a small one after them: the session still works
        wait_until(lambda: any(size == 2 for _, size in received), 10, "the small message")
        time.sleep(0.5)
        assert max(size for _, size in received) <= LARGEST_PACKET
        assert agent.state()["broker_connected"]
        assert agent.state()["ota"]["last_event"]["reason"] == "wrong_schema"  # the small one was read, refused
    finally:
        attacker.close()
        agent.stop()
