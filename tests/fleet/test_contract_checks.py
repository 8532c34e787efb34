"""The contract's value checks the collector relies on: integer ranges, storable text, real timestamps.

Every payload here parses as JSON; before these checks each one either crashed the collector when
bound to SQLite (ints past 2^63, lone surrogates) or was stored as garbage (a made-up created_at).
"""

from __future__ import annotations

import json

import pytest

from shared.mqtt.contract import MAX_INT64, OTA_EVENT, OTA_MANIFEST, PREDICTION_BATCH, ContractError, parse_timestamp
from tests.sync.test_contract import valid_batch


def decode_batch(mutate) -> dict:
    payload = valid_batch()
    mutate(payload)
    return PREDICTION_BATCH.decode(json.dumps(payload).encode())


def reason_of(mutate) -> str:
    with pytest.raises(ContractError) as refused:
        decode_batch(mutate)
    return refused.value.reason


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda p: p.update(dropped_rows=2**63), "schema"),
        (lambda p: p.update(dropped_rows=2**31), "schema"),
        (lambda p: p["records"][0].update(latency_ms=2**64), "schema"),
        (lambda p: p["records"][0].update(latency_ms=1e300), "schema"),
        (lambda p: p["records"][0].update(text="lone \ud800"), "bad_text"),
        (lambda p: p["records"][0].update(label_name="\udfff"), "bad_text"),
        (lambda p: p["records"][1].update(snippet="NUL\x00"), "bad_text"),
        (lambda p: p["records"][0].update(created_at="2026-05-01 sometime"), "bad_timestamp"),
        (lambda p: p["records"][0].update(created_at="2026-05-01T07:59:58"), "bad_timestamp"),  # no offset
        (lambda p: p["records"][0].update(created_at="2026-05-01T07:59"), "bad_timestamp"),
        (lambda p: p["records"][0].update(created_at="0001-01-01T00:00:00+14:00"), "bad_timestamp"),
        (lambda p: p.update(sent_at="not a time at all"), "bad_timestamp"),
    ],
)
def test_values_no_store_can_hold_are_refused_with_a_countable_reason(mutate, reason):
    assert reason_of(mutate) == reason


def test_what_devices_send_today_still_passes():
    """Backward compatible: the same wire format, and the values real devices produce."""
    decoded = decode_batch(
        lambda p: p.update(
            dropped_rows=2**31 - 1,
            sent_at="2026-05-01T08:00:00.123+00:00",
            records=[
                {
                    **p["records"][0],
                    "created_at": "2026-05-01T07:59:58.001Z",
                    "text": "naïve café — 数据",
                    "latency_ms": 0,
                }
            ],
        )
    )
    assert decoded["records"][0]["text"] == "naïve café — 数据"


def test_ota_sequences_must_fit_64_bits():
    event = {
        "schema": OTA_EVENT.schema_id,
        "device_id": "pi-1",
        "event": "activated",
        "channel": "stable",
        "sequence": MAX_INT64,
        "at": "2026-05-01T08:00:00+00:00",
    }
    assert OTA_EVENT.decode(json.dumps(event).encode())["sequence"] == MAX_INT64
    with pytest.raises(ContractError, match="sequence must be <="):
        OTA_EVENT.decode(json.dumps({**event, "sequence": MAX_INT64 + 1}).encode())
    assert OTA_MANIFEST.fields["sequence"].maximum == MAX_INT64


def test_timestamps_keep_their_offset():
    assert parse_timestamp("2026-05-01T10:00:00+02:00") == parse_timestamp("2026-05-01T08:00:00Z")
