"""MQTT contract v1: topics, payload schemas, size limits and their validation.

Both sides import this module: the device encodes with it, the cloud decodes with it, so a schema
change is one diff in one place. CONTRACT.md beside this file is the human-readable version; keep
the two in step (tests/sync/test_contract.py checks that every topic here is documented there).

Validation is deliberately hand-rolled and small (no jsonschema dependency on the Pi): every
payload is size-checked *before* it is parsed, then parsed as strict JSON, then checked field by
field. Any failure raises `ContractError` whose `reason` is a short machine-readable word the
collector counts by.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from shared.signing import canonical_json

CONTRACT_VERSION = "v1"
ROOT = f"careeredge/{CONTRACT_VERSION}"

# Availability payloads are plain strings so Home Assistant / Frigate-style tooling reads them as is.
STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"

# Size limits (bytes on the wire). The collector rejects anything larger before parsing it.
KIB = 1024
MIB = 1024 * KIB
MAX_STATUS_BYTES = 16
MAX_PREDICTION_BATCH_BYTES = 1 * MIB
MAX_RECORDS_PER_BATCH = 1000
MAX_TEXT_CHARS = 16_000
MAX_SNIPPET_CHARS = 512
MAX_MANIFEST_BYTES = 256 * KIB
MAX_CHUNK_BYTES = 1 * MIB
MAX_BUNDLE_BYTES = 1024 * MIB
MAX_OTA_EVENT_BYTES = 8 * KIB
MAX_MODEL_STATE_BYTES = 8 * KIB
# The MQTT Maximum Packet Size every client sets in CONNECT (and the broker's `max_packet_size`): the
# largest payload above plus room for the topic and properties. A bigger packet is dropped by the
# broker before it reaches the client, rather than received whole and then refused.
MAX_PACKET_BYTES = max(MAX_CHUNK_BYTES, MAX_PREDICTION_BATCH_BYTES) + 64 * KIB

# Integer ranges. Every integer a receiver stores must fit the storage's 64-bit signed INTEGER /
# BIGINT (JSON itself has no limit: `1e400`-sized integers parse fine in Python and then fail to bind).
MAX_INT64 = 2**63 - 1
MAX_DROPPED_ROWS = 2**31 - 1  # per batch; the collector sums them per device in a 64-bit column
MAX_LATENCY_MS = 24 * 3600 * 1000.0  # one inference longer than a day is a broken clock, not a latency

# Identifiers end up inside topic names, so they must never contain MQTT wildcards or separators.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_UUIDISH = re.compile(r"^[0-9A-Za-z-]{8,64}$")


class ContractError(ValueError):
    """A payload or topic that breaks the contract. `reason` is what the collector counts by."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def check_identifier(value: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ContractError(
            "bad_identifier",
            f"{what} {value!r} must be 1-64 characters of letters, digits, '_', '-' or '.'",
        )
    return value


def _device_topic(device_id: str, leaf: str) -> str:
    return f"{ROOT}/devices/{check_identifier(device_id, 'device_id')}/{leaf}"


class Topics:
    """Every topic of contract v1. Placeholders are validated identifiers, never raw user strings."""

    ROOT = ROOT
    ALL_DEVICE_PREDICTIONS = f"{ROOT}/devices/+/predictions"
    ALL_DEVICE_OTA_EVENTS = f"{ROOT}/devices/+/ota"
    ALL_DEVICE_MODEL_STATES = f"{ROOT}/devices/+/model"
    ALL_DEVICE_STATUSES = f"{ROOT}/devices/+/status"

    @staticmethod
    def device_status(device_id: str) -> str:
        return _device_topic(device_id, "status")

    @staticmethod
    def device_predictions(device_id: str) -> str:
        return _device_topic(device_id, "predictions")

    @staticmethod
    def device_model(device_id: str) -> str:
        return _device_topic(device_id, "model")

    @staticmethod
    def device_ota_events(device_id: str) -> str:
        return _device_topic(device_id, "ota")

    @staticmethod
    def device_acks(device_id: str) -> str:
        """Collector -> device: the prediction batches it committed (end-to-end acknowledgement)."""
        return _device_topic(device_id, "acks")

    @staticmethod
    def model_manifest(channel: str) -> str:
        return f"{ROOT}/models/{check_identifier(channel, 'channel')}/manifest"

    @staticmethod
    def model_chunk(channel: str, bundle_id: str, index: int) -> str:
        return f"{Topics.model_chunk_prefix(channel, bundle_id)}/{int(index)}"

    @staticmethod
    def model_chunk_prefix(channel: str, bundle_id: str) -> str:
        if not _HEX16.match(bundle_id):
            raise ContractError("bad_identifier", f"bundle id {bundle_id!r} must be 16 hex digits")
        return f"{ROOT}/models/{check_identifier(channel, 'channel')}/bundles/{bundle_id}/chunks"

    @staticmethod
    def shared(group: str, topic_filter: str) -> str:
        """An MQTT v5 shared subscription: the broker spreads messages across the group's members."""
        return f"$share/{check_identifier(group, 'group')}/{topic_filter}"

    @staticmethod
    def device_id_of(topic: str) -> str:
        """`careeredge/v1/devices/<id>/<kind>` -> `<id>` (ContractError for anything else)."""
        parts = topic.split("/")
        if len(parts) != 5 or "/".join(parts[:3]) != f"{ROOT}/devices":
            raise ContractError("bad_topic", f"not a device topic: {topic!r}")
        return check_identifier(parts[3], "device_id")

    @staticmethod
    def chunk_index_of(topic: str) -> int:
        index = topic.rsplit("/", 1)[-1]
        if not index.isdigit():
            raise ContractError("bad_topic", f"not a chunk topic: {topic!r}")
        return int(index)


def bundle_id(sha256_hex: str) -> str:
    """Chunk topics are content-addressed by the first 16 hex digits of the packed bundle's sha256."""
    return sha256_hex[:16]


# --- payload schemas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One JSON field: its type, whether it must be present, and simple bounds.

    Every string is also checked for text a store can hold: no lone surrogates (JSON `"\\ud800"`
    parses to one, and it cannot be encoded as UTF-8) and no U+0000 (PostgreSQL text refuses it).
    """

    kind: type | tuple[type, ...]
    required: bool = True
    nullable: bool = False
    max_len: int | None = None  # characters for str, items for list
    min_len: int = 0
    pattern: re.Pattern | None = None
    choices: frozenset | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: Field | dict[str, Field] | None = None  # list element: a Field or an object schema
    # A further check of a present, non-null value: check(value, where, key) raises ContractError.
    check: Callable[[Any, str, str | int | None], None] | None = None

    @property
    def kinds(self) -> tuple[type, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    @cached_property
    def exact_kinds(self) -> frozenset[type]:
        """Types accepted without the isinstance() slow path (what json.loads produces)."""
        return frozenset(k for k in self.kinds if k is not bool or bool in self.kinds)


Schema = dict[str, Field]


def _check_value(value: Any, spec: Field, where: str, key: str | int | None = None) -> None:
    """Check one value. `where` + `key` name it in an error; the path is only built on failure
    (validation runs for every field of every record at thousands of records per second)."""
    if value is None:
        if spec.nullable:
            return
        raise ContractError("schema", f"{_path(where, key)} must not be null")
    exact = type(value)
    if exact not in spec.exact_kinds:
        _check_kind(value, spec, where, key)
    if exact is str or exact is list:
        if exact is str and ("\x00" in value or not value.isascii()):
            _check_storable_text(value, _path(where, key))
        size = len(value)
        if size < spec.min_len or (spec.max_len is not None and size > spec.max_len):
            _check_length(value, spec, where, key)
    elif exact is float and not math.isfinite(value):
        raise ContractError("schema", f"{_path(where, key)} must be finite")
    if spec.pattern is not None and not spec.pattern.match(value):
        raise ContractError("schema", f"{_path(where, key)} has an invalid format")
    if spec.choices is not None and value not in spec.choices:
        raise ContractError("schema", f"{_path(where, key)} must be one of {sorted(spec.choices)}")
    if spec.minimum is not None and value < spec.minimum:
        raise ContractError("schema", f"{_path(where, key)} must be >= {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise ContractError("schema", f"{_path(where, key)} must be <= {spec.maximum}")
    if spec.check is not None:
        spec.check(value, where, key)
    if exact is list and spec.items is not None:
        inner = _path(where, key)
        if isinstance(spec.items, dict):
            for i, item in enumerate(value):
                validate_object(item, spec.items, f"{inner}[{i}]")
        else:
            for i, item in enumerate(value):
                _check_value(item, spec.items, inner, i)


def _path(where: str, key: str | int | None) -> str:
    if key is None:
        return where
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"


def _check_kind(value: Any, spec: Field, where: str, key: str | int | None) -> None:
    """The slow path: subclasses of the allowed types pass, anything else (a boolean too) fails."""
    kinds = spec.kinds
    # bool is an int in Python; JSON true is never a valid number here.
    if isinstance(value, bool) and bool not in kinds:
        raise ContractError("schema", f"{_path(where, key)} must be {_kind_name(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise ContractError("schema", f"{_path(where, key)} must be {_kind_name(kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ContractError("schema", f"{_path(where, key)} must be finite")
    if isinstance(value, str):
        _check_storable_text(value, _path(where, key))
    if isinstance(value, (str, list)):
        _check_length(value, spec, where, key)


def _check_length(value: str | list, spec: Field, where: str, key: str | int | None) -> None:
    if spec.max_len is not None and len(value) > spec.max_len:
        raise ContractError("oversized_field", f"{_path(where, key)} is longer than {spec.max_len}")
    if len(value) < spec.min_len:
        raise ContractError("schema", f"{_path(where, key)} is shorter than {spec.min_len}")


def _check_storable_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise ContractError("bad_text", f"{where} contains U+0000")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError("bad_text", f"{where} contains a lone surrogate (not valid Unicode)") from None


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 date-time with an explicit UTC offset (`...Z` or `...+02:00`), as a datetime.

    Raises ValueError for anything else: a bare date, a local time without offset, a made-up string.
    """
    parsed = datetime.fromisoformat(value)
    if "T" not in value.upper() or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} is not a date-time with a UTC offset")
    try:
        parsed.astimezone(UTC)  # year 1 at +14:00 is before year 1 in UTC: no store can hold it
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None
    return parsed


def _check_timestamp(value: str, where: str, key: str | int | None = None) -> None:
    try:
        parse_timestamp(value)
    except ValueError:
        raise ContractError(
            "bad_timestamp", f"{_path(where, key)} {value[:40]!r} is not an ISO 8601 date-time with a UTC offset"
        ) from None


def _kind_name(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def validate_object(obj: Any, schema: Schema, where: str) -> dict:
    """Check `obj` against `schema`. Unknown fields are allowed (forward compatibility within v1)."""
    if not isinstance(obj, dict):
        raise ContractError("schema", f"{where} must be a JSON object")
    for name, spec in schema.items():
        if name not in obj:
            if spec.required:
                raise ContractError("schema", f"{where}.{name} is missing")
            continue
        _check_value(obj[name], spec, where, name)
    return obj


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


@dataclass(frozen=True)
class MessageType:
    """A JSON payload kind: its schema id (the `schema` field), fields and wire size limit."""

    schema_id: str
    fields: Schema
    max_bytes: int
    extra_check: Callable[[dict], None] | None = field(default=None, compare=False)
    # Older schema ids of the same fields that receivers still accept (senders write `schema_id`).
    also_accepts: frozenset[str] = frozenset()

    def decode(self, raw: bytes) -> dict:
        """Size check, strict UTF-8 JSON parse, schema id check, field validation. Raises ContractError."""
        if len(raw) > self.max_bytes:
            raise ContractError("oversized", f"{len(raw)} bytes > limit {self.max_bytes} for {self.schema_id}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError("not_utf8", str(exc)) from None
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ContractError("malformed_json", str(exc)[:200]) from None
        return self.validate(obj)

    def validate(self, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise ContractError("schema", "payload must be a JSON object")
        if obj.get("schema") != self.schema_id and obj.get("schema") not in self.also_accepts:
            raise ContractError("wrong_schema", f"expected schema {self.schema_id!r}, got {obj.get('schema')!r}")
        validate_object(obj, self.fields, "payload")
        if self.extra_check is not None:
            self.extra_check(obj)
        return obj

    def encode(self, obj: dict) -> bytes:
        """Validate then serialise; a payload the device builds must pass the cloud's checks."""
        self.validate(obj)
        raw = canonical_json(obj)
        if len(raw) > self.max_bytes:
            raise ContractError("oversized", f"{len(raw)} bytes > limit {self.max_bytes} for {self.schema_id}")
        return raw


_NUMBER = (int, float)
_TIMESTAMP = Field(str, max_len=40, min_len=10, check=_check_timestamp)
_SEQUENCE = Field(int, required=False, nullable=True, minimum=0, maximum=MAX_INT64)

PREDICTION_RECORD: Schema = {
    "uuid": Field(str, pattern=_UUIDISH),
    "created_at": _TIMESTAMP,
    "source": Field(str, required=False, nullable=True, max_len=64),
    "model_name": Field(str, nullable=True, max_len=128),
    "model_version": Field(str, nullable=True, max_len=64),
    "text_sha256": Field(str, nullable=True, pattern=_HEX64),
    # Present only when the device's privacy mode is "full"; "hash" devices send null.
    "text": Field(str, required=False, nullable=True, max_len=MAX_TEXT_CHARS),
    "snippet": Field(str, required=False, nullable=True, max_len=MAX_SNIPPET_CHARS),
    "label": Field(int, choices=frozenset({0, 1})),
    "label_name": Field(str, max_len=64),
    "probabilities": Field(list, min_len=2, max_len=2, items=Field(_NUMBER, minimum=0.0, maximum=1.0)),
    "latency_ms": Field(_NUMBER, nullable=True, minimum=0.0, maximum=MAX_LATENCY_MS),
}


def _object_check(schema: Schema) -> Callable[[Any, str, str | int | None], None]:
    """A Field check that validates a nested JSON object against `schema`."""

    def check(value: Any, where: str, key: str | int | None) -> None:
        validate_object(value, schema, _path(where, key))

    return check


# Optional (absent from devices without [model] shadow): the shadow model's answer for the same text,
# computed off the request path. The served prediction is the record's label/probabilities.
SHADOW_PREDICTION: Schema = {
    "model_name": Field(str, max_len=128),
    "model_version": Field(str, nullable=True, max_len=64),
    "probabilities": Field(list, min_len=2, max_len=2, items=Field(_NUMBER, minimum=0.0, maximum=1.0)),
}
PREDICTION_RECORD["shadow"] = Field(dict, required=False, nullable=True, check=_object_check(SHADOW_PREDICTION))

MAX_SKEW_FEATURES = 200
# Optional: the skew the device computed from its own store (shared.monitoring) for its last window.
DEVICE_SKEW: Schema = {
    "window": Field(str, max_len=64),  # e.g. "last 500 predictions" or "2026-W31"
    "computed_at": _TIMESTAMP,
    "documents": Field(int, minimum=0, maximum=MAX_INT64),
    "threshold": Field(_NUMBER, minimum=0.0, maximum=1.0),
    "alerts": Field(list, max_len=MAX_SKEW_FEATURES, items=Field(str, max_len=128)),
    "worst": Field(
        list,
        max_len=10,
        items={
            "feature": Field(str, max_len=128),
            "value": Field(_NUMBER, minimum=0.0),
            "threshold": Field(_NUMBER, minimum=0.0, maximum=1.0),
        },
    ),
}

# /2: the sender marks its rows synced only when the collector acknowledges the batch on the
# device's `acks` topic (PREDICTION_ACK). /1 senders took the broker's PUBACK as delivery; collectors
# still accept their batches (and acknowledge them too, to nobody listening).
PREDICTION_BATCH = MessageType(
    schema_id="careeredge.predictions/2",
    also_accepts=frozenset({"careeredge.predictions/1"}),
    max_bytes=MAX_PREDICTION_BATCH_BYTES,
    fields={
        "device_id": Field(str, pattern=_IDENTIFIER),
        "batch_id": Field(str, pattern=_UUIDISH),
        "sent_at": _TIMESTAMP,
        # Rows the device dropped under its buffer-cap policy since the previous batch.
        "dropped_rows": Field(int, required=False, minimum=0, maximum=MAX_DROPPED_ROWS),
        "records": Field(list, min_len=1, max_len=MAX_RECORDS_PER_BATCH, items=PREDICTION_RECORD),
        "skew": Field(dict, required=False, nullable=True, check=_object_check(DEVICE_SKEW)),
    },
)


def is_batch_id(value: object) -> bool:
    return isinstance(value, str) and bool(_UUIDISH.match(value))


MAX_ACKED_BATCHES = 1000
MAX_PREDICTION_ACK_BYTES = 64 * KIB

PREDICTION_ACK = MessageType(
    schema_id="careeredge.predictions.ack/1",
    max_bytes=MAX_PREDICTION_ACK_BYTES,
    fields={
        "device_id": Field(str, pattern=_IDENTIFIER),
        # Batches now in the collector's store (a re-sent or redelivered batch is acknowledged again).
        "committed": Field(list, max_len=MAX_ACKED_BATCHES, items=Field(str, pattern=_UUIDISH)),
        # Batches the collector kept as dead letters (refused by the contract or the store): never
        # stored, never worth re-sending; the device logs them and stops sending their rows.
        "dead_lettered": Field(list, required=False, max_len=MAX_ACKED_BATCHES, items=Field(str, pattern=_UUIDISH)),
        "at": _TIMESTAMP,
    },
)


def _check_chunk_table(manifest: dict) -> None:
    expected = math.ceil(manifest["size"] / manifest["chunk_size"])
    if len(manifest["chunks"]) != expected:
        raise ContractError(
            "schema", f"manifest lists {len(manifest['chunks'])} chunks, size/chunk_size needs {expected}"
        )


OTA_MANIFEST = MessageType(
    schema_id="careeredge.ota.manifest/1",
    max_bytes=MAX_MANIFEST_BYTES,
    extra_check=_check_chunk_table,
    fields={
        "channel": Field(str, pattern=_IDENTIFIER),
        # Monotonic per channel; the device refuses anything not newer than what it already accepted.
        "sequence": Field(int, minimum=1, maximum=MAX_INT64),
        "name": Field(str, max_len=128),
        "version": Field(str, max_len=64),
        "created_at": Field(str, required=False, nullable=True, max_len=40),
        "published_at": _TIMESTAMP,
        "size": Field(int, minimum=1, maximum=MAX_BUNDLE_BYTES),
        "sha256": Field(str, pattern=_HEX64),
        "chunk_size": Field(int, minimum=1, maximum=MAX_CHUNK_BYTES),
        "chunks": Field(list, min_len=1, max_len=4096, items=Field(str, pattern=_HEX64)),
        "metrics": Field(dict, required=False, nullable=True),
        "key_id": Field(str, pattern=_HEX16),
        "signature": Field(str, max_len=200),
        # Rotation records (shared.signing) leading from an older trusted key to `key_id`.
        "key_rotations": Field(list, required=False, max_len=8, items=Field(dict)),
    },
)

OTA_EVENTS = frozenset(
    {"download_started", "download_resumed", "download_paused", "activated", "rejected", "rolled_back"}
)

OTA_EVENT = MessageType(
    schema_id="careeredge.ota.event/1",
    max_bytes=MAX_OTA_EVENT_BYTES,
    fields={
        "device_id": Field(str, pattern=_IDENTIFIER),
        "event": Field(str, choices=OTA_EVENTS),
        "channel": Field(str, nullable=True, max_len=64),
        "sequence": _SEQUENCE,
        "version": Field(str, required=False, nullable=True, max_len=64),
        "sha256": Field(str, required=False, nullable=True, max_len=64),
        "reason": Field(str, required=False, nullable=True, max_len=64),
        "detail": Field(str, required=False, nullable=True, max_len=1024),
        "at": _TIMESTAMP,
    },
)

MODEL_STATE = MessageType(
    schema_id="careeredge.model.state/1",
    max_bytes=MAX_MODEL_STATE_BYTES,
    fields={
        "device_id": Field(str, pattern=_IDENTIFIER),
        "active_version": Field(str, nullable=True, max_len=64),
        "active_sha256": Field(str, nullable=True, max_len=64),
        "previous_version": Field(str, required=False, nullable=True, max_len=64),
        "sequence": _SEQUENCE,
        "at": _TIMESTAMP,
    },
)
