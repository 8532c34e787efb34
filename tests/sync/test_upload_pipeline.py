"""The upload pipeline without a broker: a real SQLite store, an in-memory transport that records each
batch and confirms or refuses it, and a clock the test moves (both in tests/sync/conftest.py)."""

from __future__ import annotations

import pytest

from device.store import PredictionStore
from device.sync.upload import ACK_TIMEOUT_S, MAX_ACK_TIMEOUT_S, REFUSED_BACKOFF_S, UploadPipeline
from shared.mqtt.contract import MAX_PREDICTION_BATCH_BYTES
from tests.sync.conftest import Clock, MemoryTransport, fill_store, prediction_record


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport(clock) -> MemoryTransport:
    return MemoryTransport(clock)


@pytest.fixture
def store(tmp_path):
    with PredictionStore(tmp_path / "device.db") as opened:
        yield opened


def pipeline_for(store, transport, clock, **kwargs) -> UploadPipeline:
    kwargs.setdefault("batch_size", 10)
    kwargs.setdefault("max_inflight", 3)
    return UploadPipeline(store, transport, "pi-1", clock=clock, **kwargs)


def test_rows_go_oldest_first_and_are_synced_only_when_confirmed(tmp_path, store, transport, clock):
    uuids = fill_store(store.path, 45)
    pipeline = pipeline_for(store, transport, clock)

    assert pipeline.step() == 30  # three batches of ten: the in-flight window is full
    assert pipeline.step() == 0
    assert [transport.uuids(b) for b in transport.sent] == [uuids[0:10], uuids[10:20], uuids[20:30]]
    assert store.count_unsynced() == 45, "nothing is synced before delivery is confirmed"

    pipeline.confirm(transport.sent[1]["batch_id"])
    assert store.count_unsynced() == 35
    assert {r["uuid"] for r in store.unsynced(limit=100)} == set(uuids) - set(uuids[10:20])
    assert pipeline.step() == 10  # one slot free again: the next ten rows
    assert transport.uuids(transport.sent[3]) == uuids[30:40]

    for batch in list(transport.sent):
        pipeline.confirm(batch["batch_id"])
    pipeline.step()
    pipeline.confirm(transport.sent[-1]["batch_id"])
    assert store.count_unsynced() == 0
    delivered = [u for b in transport.sent for u in transport.uuids(b)]
    assert sorted(delivered) == sorted(uuids) and len(delivered) == len(set(delivered))
    assert pipeline.counters.acked_rows == 45 and pipeline.counters.inflight_rows == 0


def test_a_refused_batch_keeps_its_rows_and_is_resent_after_the_backoff(store, transport, clock):
    uuids = fill_store(store.path, 10)
    pipeline = pipeline_for(store, transport, clock)
    pipeline.step()
    first = transport.sent[0]

    pipeline.refuse(first["batch_id"], "broker has no collector subscribed")
    assert store.count_unsynced() == 10
    clock.now += REFUSED_BACKOFF_S / 2
    assert pipeline.step() == 0, "publishing is held back after a refusal"
    clock.now += REFUSED_BACKOFF_S
    assert pipeline.step() == 10
    again = transport.sent[1]
    assert again["batch_id"] != first["batch_id"] and transport.uuids(again) == uuids

    pipeline.confirm(first["batch_id"])  # a late answer about the refused batch changes nothing
    assert store.count_unsynced() == 10
    pipeline.confirm(again["batch_id"])
    assert store.count_unsynced() == 0


def test_an_unconfirmed_batch_is_resent_after_the_timeout_counted_from_the_last_reconnect(store, transport, clock):
    uuids = fill_store(store.path, 10)
    pipeline = pipeline_for(store, transport, clock)
    pipeline.step()

    clock.now += ACK_TIMEOUT_S * 0.75
    transport.reconnect()  # the transport re-sends what it had queued: the batch's clock restarts
    clock.now += ACK_TIMEOUT_S * 0.75
    assert pipeline.step() == 0 and len(transport.sent) == 1

    clock.now += ACK_TIMEOUT_S * 0.5
    assert pipeline.step() == 10
    assert transport.uuids(transport.sent[1]) == uuids
    pipeline.confirm(transport.sent[0]["batch_id"])  # given up on, but the collector has it: synced
    assert store.count_unsynced() == 0
    pipeline.confirm(transport.sent[1]["batch_id"])  # the re-sent copy: nothing left to do
    assert store.count_unsynced() == 0 and pipeline.counters.acked_rows == 10


def test_each_timeout_without_an_acknowledgement_doubles_the_next_wait(store, transport, clock):
    """A collector away for hours: the in-flight window is re-sent ever more rarely, not every minute."""
    fill_store(store.path, 10)
    pipeline = pipeline_for(store, transport, clock, max_inflight=1)
    pipeline.step()
    resent_at = []
    for _ in range(8):
        before = len(transport.sent)
        while len(transport.sent) == before:
            clock.now += 1.0
            pipeline.step()
        resent_at.append(clock.now)
    waits = [round(b - a) for a, b in zip(resent_at, resent_at[1:])]
    assert waits[:4] == [2 * ACK_TIMEOUT_S + 1, 4 * ACK_TIMEOUT_S + 1, 8 * ACK_TIMEOUT_S + 1, MAX_ACK_TIMEOUT_S + 1]
    assert waits[-1] == MAX_ACK_TIMEOUT_S + 1
    pipeline.confirm(transport.sent[-1]["batch_id"])
    assert pipeline.current_ack_timeout_s == ACK_TIMEOUT_S  # the first acknowledgement resets it


def test_a_batch_the_collector_dead_lettered_is_not_sent_again(store, transport, clock, caplog):
    fill_store(store.path, 10)
    pipeline = pipeline_for(store, transport, clock)
    pipeline.step()
    with caplog.at_level("WARNING", logger="careeredge.sync"):
        pipeline.dead_lettered(transport.sent[0]["batch_id"])
    assert store.count_unsynced() == 0 and pipeline.counters.dead_lettered_rows == 10
    assert "dead letter" in caplog.text
    assert pipeline.step() == 0


def test_nothing_is_published_while_disconnected_or_refused_by_the_transport(store, transport, clock):
    uuids = fill_store(store.path, 10)
    pipeline = pipeline_for(store, transport, clock)
    transport.connected_since = None
    clock.now += 10 * ACK_TIMEOUT_S
    assert pipeline.step() == 0 and transport.sent == []

    transport.reconnect()
    transport.accepting = False
    assert pipeline.step() == 0
    assert pipeline.counters.published_rows == 0 and store.count_unsynced() == 10

    transport.accepting = True
    assert pipeline.step() == 10 and transport.uuids(transport.sent[0]) == uuids


def test_the_buffer_cap_drops_the_oldest_rows_and_the_next_batch_reports_them(store, transport, clock):
    uuids = fill_store(store.path, 30)
    pipeline = pipeline_for(store, transport, clock, buffer_cap_rows=20, max_inflight=1)
    transport.connected_since = None  # offline: the cap is enforced all the same
    pipeline.step()
    assert pipeline.counters.dropped_rows == 10 and store.count_unsynced() == 20
    assert {r["uuid"] for r in store.unsynced(limit=100)} == set(uuids[10:])

    transport.reconnect()
    pipeline.step()
    first = transport.sent[0]
    assert first["dropped_rows"] == 10 and transport.uuids(first) == uuids[10:20]
    # The report travels with the batch: if that batch is refused, the next one carries it again.
    pipeline.refuse(first["batch_id"], "broker refused a batch (reason code 0x97)")
    clock.now += REFUSED_BACKOFF_S + 1
    pipeline.step()
    assert transport.sent[1]["dropped_rows"] == 10
    pipeline.confirm(transport.sent[1]["batch_id"])
    pipeline.step()
    assert transport.sent[2]["dropped_rows"] == 0


def test_batches_are_split_to_fit_the_contract_size_limit(store, transport, clock):
    long_text = "python sql kubernetes " * 700  # ~15 KB each, near the contract's per-record cap
    for i in range(120):
        store.insert({**prediction_record(i), "text": long_text})
    pipeline = pipeline_for(store, transport, clock, batch_size=120, max_inflight=1)

    assert pipeline.step() == 120
    assert len(transport.sent) > 1 and max(transport.sizes) <= MAX_PREDICTION_BATCH_BYTES
    assert sum(len(b["records"]) for b in transport.sent) == 120
    for batch in transport.sent:
        pipeline.confirm(batch["batch_id"])
    assert store.count_unsynced() == 0


def test_a_row_that_breaks_the_contract_is_skipped_not_blocking(store, transport, clock):
    good = fill_store(store.path, 5)
    bad = store.insert({**prediction_record(99), "model_version": "v" * 200})  # over the contract's 64
    more = [store.insert(prediction_record(100 + i)) for i in range(5)]
    pipeline = pipeline_for(store, transport, clock)

    assert pipeline.step() == 10
    sent = [u for batch in transport.sent for u in transport.uuids(batch)]
    assert sent == good + more
    for batch in transport.sent:
        pipeline.confirm(batch["batch_id"])
    assert [r["uuid"] for r in store.unsynced()] == [bad]  # kept on the device for inspection
    assert pipeline.step() == 0 and pipeline.counters.invalid_rows == 1


def test_the_skew_summary_rides_on_the_batch_a_contract_breaking_row_was_dropped_from(store, transport, clock):
    """The summary is taken once per batch to send (taking it marks it sent): a batch sent again without
    a row that breaks the contract still carries it."""
    from tests.monitoring.test_field import SKEW

    good = fill_store(store.path, 3)
    store.insert({**prediction_record(99), "model_version": "v" * 200})  # over the contract's 64
    summaries = [SKEW]
    pipeline = pipeline_for(store, transport, clock)
    pipeline.skew_summary = lambda: summaries.pop() if summaries else None  # consumed when taken

    assert pipeline.step() == 3
    (batch,) = transport.sent
    assert transport.uuids(batch) == good and batch["skew"] == SKEW
