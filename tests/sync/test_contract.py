"""The MQTT contract and the signing rules, without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.mqtt.contract import (
    MAX_PREDICTION_BATCH_BYTES,
    OTA_MANIFEST,
    PREDICTION_BATCH,
    ContractError,
    Topics,
)
from shared.signing import SignatureError, sign_manifest, verify_manifest

CONTRACT_MD = Path(__file__).resolve().parents[2] / "shared" / "mqtt" / "CONTRACT.md"


def valid_batch(records: int = 2) -> dict:
    return {
        "schema": "careeredge.predictions/1",
        "device_id": "pi-1",
        "batch_id": "b0b0b0b0-0000-4000-8000-000000000000",
        "sent_at": "2026-05-01T08:00:00.000Z",
        "dropped_rows": 0,
        "records": [
            {
                "uuid": f"00000000-0000-4000-8000-{i:012d}",
                "created_at": "2026-05-01T07:59:58.001Z",
                "source": "web",
                "model_name": "m",
                "model_version": "1",
                "text_sha256": "a" * 64,
                "text": "hello",
                "snippet": "hello",
                "label": 1,
                "label_name": "Data Science",
                "probabilities": [0.2, 0.8],
                "latency_ms": 4.0,
            }
            for i in range(records)
        ],
    }


def test_every_topic_is_documented_in_contract_md():
    doc = CONTRACT_MD.read_text()
    topics = [
        Topics.device_status("DEVICE"),
        Topics.device_predictions("DEVICE"),
        Topics.device_model("DEVICE"),
        Topics.device_ota_events("DEVICE"),
        Topics.device_acks("DEVICE"),
        Topics.model_manifest("CHANNEL"),
        Topics.model_chunk("CHANNEL", "0123456789abcdef", 0),
    ]
    for topic in topics:
        template = (
            topic.replace("DEVICE", "{device_id}")
            .replace("CHANNEL", "{channel}")
            .replace("0123456789abcdef", "{bundle_id}")
            .replace("chunks/0", "chunks/{index}")
        )
        assert f"`{template}`" in doc, template


def test_identifiers_in_topics_cannot_carry_wildcards_or_separators():
    for bad in ("a/b", "a+", "#", "", "x" * 65):
        with pytest.raises(ContractError):
            Topics.device_predictions(bad)
    assert Topics.shared("collectors", Topics.ALL_DEVICE_PREDICTIONS) == (
        "$share/collectors/careeredge/v1/devices/+/predictions"
    )
    assert Topics.device_id_of("careeredge/v1/devices/pi-1/predictions") == "pi-1"


def test_a_valid_batch_round_trips():
    batch = valid_batch()
    assert PREDICTION_BATCH.decode(PREDICTION_BATCH.encode(batch)) == batch


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe\x00", "not_utf8"),
        (b"[1, 2]", "schema"),
        (b'{"schema": "careeredge.predictions/9"}', "wrong_schema"),
        (b"x" * (MAX_PREDICTION_BATCH_BYTES + 1), "oversized"),
        (
            b'{"schema": "careeredge.predictions/1", "device_id": "pi-1", "batch_id": "b0b0b0b0", '
            b'"sent_at": "2026-05-01T08:00:00Z", "records": [{"uuid": "u"}]}',
            "schema",
        ),
        (b'{"a": NaN}', "malformed_json"),
    ],
)
def test_decode_rejects_with_a_countable_reason(payload, reason):
    with pytest.raises(ContractError) as excinfo:
        PREDICTION_BATCH.decode(payload)
    assert excinfo.value.reason == reason


def test_field_checks_catch_wrong_types_and_ranges():
    for mutate in (
        lambda b: b["records"][0].update(label=2),
        lambda b: b["records"][0].update(label=True),
        lambda b: b["records"][0].update(probabilities=[0.5]),
        lambda b: b["records"][0].update(probabilities=[1.5, -0.5]),
        lambda b: b["records"][0].update(text="x" * 16_001),
        lambda b: b.update(records=[]),
        lambda b: b.update(device_id="pi/1"),
    ):
        batch = valid_batch()
        mutate(batch)
        with pytest.raises(ContractError):
            PREDICTION_BATCH.decode(json.dumps(batch).encode())


def _manifest() -> dict:
    return {
        "schema": OTA_MANIFEST.schema_id,
        "channel": "stable",
        "sequence": 3,
        "name": "m",
        "version": "3",
        "published_at": "2026-05-01T08:00:00+00:00",
        "size": 10,
        "sha256": "b" * 64,
        "chunk_size": 4,
        "chunks": ["c" * 64] * 3,
        "metrics": {"f1": 0.9},
    }


def test_signed_manifest_verifies_and_any_change_breaks_it(keys):
    signed = sign_manifest(_manifest(), keys["private"])
    OTA_MANIFEST.validate(signed)
    verify_manifest(signed, keys["public"])
    # Key order and whitespace do not matter (canonical JSON is what is signed)...
    verify_manifest(json.loads(json.dumps(signed, indent=3)), keys["public"])
    # ...content does.
    for field, value in (("version", "4"), ("sequence", 4), ("sha256", "d" * 64), ("metrics", {"f1": 1.0})):
        with pytest.raises(SignatureError) as excinfo:
            verify_manifest({**signed, field: value}, keys["public"])
        assert excinfo.value.reason == "bad_signature"


def test_manifest_signed_with_another_key_is_refused_by_key_id(keys):
    foreign = sign_manifest(_manifest(), keys["other_private"])
    with pytest.raises(SignatureError) as excinfo:
        verify_manifest(foreign, keys["public"])
    assert excinfo.value.reason == "unknown_key"
    # Claiming our key id does not help: the signature itself fails.
    with pytest.raises(SignatureError) as excinfo:
        verify_manifest({**foreign, "key_id": sign_manifest(_manifest(), keys["private"])["key_id"]}, keys["public"])
    assert excinfo.value.reason == "bad_signature"


def test_manifest_chunk_table_must_match_size():
    manifest = {**_manifest(), "key_id": "0" * 16, "signature": "x"}
    OTA_MANIFEST.validate(manifest)
    with pytest.raises(ContractError):
        OTA_MANIFEST.validate({**manifest, "chunks": ["c" * 64] * 2})
