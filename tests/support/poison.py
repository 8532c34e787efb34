"""Messages that parse as JSON but must never be stored: each crashed the collector, or was stored
unchecked, before the contract checked integer ranges, text and timestamps. Used by the collector
tests and by scripts/bench_fleet.py's poison mix."""

from __future__ import annotations

import json
import uuid

from shared.mqtt.contract import OTA_EVENT, Topics
from tests.sync.test_contract import valid_batch


def good_batch(device_id: str, records: int = 1, **record_fields) -> dict:
    """A valid batch with fresh batch id and uuids; `record_fields` override every record's values."""
    batch = valid_batch(records)
    batch.update(device_id=device_id, batch_id=str(uuid.uuid4()))
    for record in batch["records"]:
        record.update(uuid=str(uuid.uuid4()), **record_fields)
    return batch


def encoded(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def poison_messages(device_id: str = "pi-1") -> list[tuple[str, bytes, str]]:
    """(topic, payload, the reason the collector counts it under)."""
    predictions = Topics.device_predictions(device_id)
    ota = {
        "schema": OTA_EVENT.schema_id,
        "device_id": device_id,
        "event": "activated",
        "channel": "stable",
        "sequence": 2**64,
        "at": "2026-05-01T08:00:00Z",
    }
    return [
        (predictions, encoded(good_batch(device_id)).replace(b'"hello"', b'"\\ud800"'), "bad_text"),
        (predictions, encoded(good_batch(device_id, latency_ms=2**64)), "schema"),
        (predictions, encoded({**good_batch(device_id), "dropped_rows": 2**64}), "schema"),
        (Topics.device_ota_events(device_id), encoded(ota), "schema"),
        (predictions, encoded(good_batch(device_id, created_at="yesterday, roughly")), "bad_timestamp"),
        (predictions, encoded(good_batch(device_id, text="NUL \x00 inside")), "bad_text"),
    ]
