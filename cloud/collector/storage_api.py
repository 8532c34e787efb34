"""The collector's storage interface: what every engine implements, raises and returns.

Both engines (cloud/collector/sqlite_storage.py, postgres_storage.py) keep the same tables (predictions keyed by `(device_id, uuid)`, the batches committed, OTA
events, dead letters, rejection counts) and pass the same tests (tests/collector/test_storage.py).

The collector acts on what a write failure *means*, so every engine maps its driver's errors to:
- `StorageUnavailable`: the store cannot take writes now (server down, login refused, lock held
  past the timeout, disk full). Not the message's fault: the collector keeps it unacknowledged and
  retries with backoff.
- `UnstorableMessage`: the store refused these values (out of range, text it cannot hold). Retrying
  cannot help: the collector acknowledges the message and keeps it as a dead letter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from shared.mqtt.contract import MAX_PREDICTION_BATCH_BYTES, parse_timestamp

# A dead letter keeps at most this much of its payload: every message the contract's size limits
# allow fits whole; a bigger one is an attack or a bug, and its first MiB is enough to see which.
DEAD_LETTER_MAX_BYTES = MAX_PREDICTION_BATCH_BYTES
# Rows per chunk of `StorageReads.logged_prediction_chunks`: ~25 MB of posting text at ~5 KB each.
LOGGED_CHUNK_ROWS = 5_000

PREDICTION_COLUMNS = (
    "device_id",
    "uuid",
    "batch_id",
    "received_at",
    "created_at",
    "source",
    "model_name",
    "model_version",
    "text_sha256",
    "text",
    "snippet",
    "label",
    "label_name",
    "p0",
    "p1",
    "latency_ms",
)


LOGGED_COLUMNS = (
    "device_id",
    "uuid",
    "created_at",
    "received_at",
    "source",
    "model_name",
    "text",
    "snippet",
    "label",
    "p1",
    "shadow_model",
    "shadow_p1",
)


class StorageUnavailable(RuntimeError):
    """The store cannot take writes right now; the message must stay unacknowledged."""


class UnstorableMessage(ValueError):
    """The store refused the message's values; retrying cannot help."""

    reason = "unstorable"


@dataclass(frozen=True)
class StoredBatch:
    """A prediction batch committed to storage: what an acknowledgement to the device would carry."""

    device_id: str
    batch_id: str
    records: int
    stored: int  # records new to the store; the rest were already there (a redelivery, a retry)

    @property
    def duplicates(self) -> int:
        return self.records - self.stored


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str
    detail: str
    collector: str

    @property
    def kept_payload(self) -> bytes:
        return self.payload[:DEAD_LETTER_MAX_BYTES]

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


class CollectorStorage(Protocol):
    """What the collector writes through. Every write is one transaction; none is ever half done."""

    description: str  # where it writes, safe to log (no password)

    def open(self) -> None:
        """Connect and bring the schema up to date. StorageUnavailable, or SchemaTooNew (fatal)."""

    def store_predictions(self, batch: dict) -> StoredBatch:
        """Store a validated prediction batch. Idempotent per (device_id, uuid) and per batch id."""

    def store_prediction_batches(self, batches: list[dict]) -> list[StoredBatch]:
        """Several batches in one transaction: all committed, or none (UnstorableMessage or StorageUnavailable)."""

    def store_ota_event(self, event: dict) -> None: ...

    def store_dead_letter(self, letter: DeadLetter) -> None:
        """Keep a message that will never be stored, and count it under its reason."""

    def store_monitoring(self, batches: list[dict]) -> None:
        """Keep what committed batches carry for monitoring: shadow predictions, the device's skew.
        Idempotent (a redelivered batch changes nothing); called after the batches are committed."""

    def close(self) -> None: ...


class StorageReads:
    """The read side both engines share (CLI summaries, the demo, tests, the bench): the same SQL,
    values normalised to the same Python types. Not part of the write interface."""

    # Engine-specific SQL for what differs: seconds from created_at to stored, the schema version,
    # the driver's parameter mark.
    DELAY_SQL: str
    SCHEMA_VERSION_SQL: str
    PARAM: str

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def _read_chunks(self, sql: str, params: tuple, size: int) -> Iterator[list[tuple]]:
        """`_read`'s rows, `size` at a time, from one statement (one consistent snapshot): a large
        result is never held whole."""
        raise NotImplementedError

    def prediction_count(self) -> int:
        return self._read("SELECT count(*) FROM predictions")[0][0]

    def prediction_uuids(self) -> set[str]:
        return {row[0] for row in self._read("SELECT uuid FROM predictions")}

    def prediction_keys(self) -> set[tuple[str, str]]:
        return {(row[0], row[1]) for row in self._read("SELECT device_id, uuid FROM predictions")}

    def delivery_delays_s(self) -> list[float]:
        """created_at -> stored, per prediction, in seconds."""
        return [row[0] for row in self._read(self.DELAY_SQL)]

    def received_range(self) -> tuple[int, datetime | None, datetime | None]:
        """(predictions, first stored, last stored): the store's intake over time."""
        count, first, last = self._read("SELECT count(*), min(received_at), max(received_at) FROM predictions")[0]
        return count, first and utc_timestamp(first), last and utc_timestamp(last)

    def committed_batches(self) -> list[tuple[str, str]]:
        rows = self._read("SELECT device_id, batch_id FROM batches ORDER BY received_at, device_id, batch_id")
        return [(row[0], row[1]) for row in rows]

    def rows_dropped_on_devices(self) -> dict[str, int]:
        return dict(self._read("SELECT device_id, rows FROM dropped_on_device ORDER BY device_id"))

    def rejection_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT reason, count FROM rejections ORDER BY reason"))

    def dead_letters(self) -> list[dict]:
        names = ("topic", "reason", "detail", "payload_bytes", "payload_sha256", "payload", "collector")
        rows = self._read(f"SELECT {', '.join(names)} FROM dead_letters ORDER BY id")
        return [{**dict(zip(names, row)), "payload": bytes(row[5])} for row in rows]

    def ota_events(self) -> list[dict]:
        names = ("device_id", "event", "channel", "sequence", "version", "sha256", "reason", "detail", "at")
        rows = self._read(f"SELECT {', '.join(names)} FROM ota_events ORDER BY id")
        return [{**dict(zip(names, row)), "at": iso_utc(utc_timestamp(row[-1]))} for row in rows]

    def schema_version(self) -> int:
        return self._read(self.SCHEMA_VERSION_SQL)[0][0]

    def logged_predictions(self, texts_from: str | None = None) -> list[dict]:
        """Every stored prediction with its shadow (if any), oldest first (`logged_prediction_chunks`, whole)."""
        return [row for chunk in self.logged_prediction_chunks(texts_from) for row in chunk]

    def logged_prediction_chunks(self, texts_from: str | None = None, size: int | None = None) -> Iterator[list[dict]]:
        """Every stored prediction with its shadow (if any), oldest first, `size` rows at a time: what the
        monitoring job reads. Texts are most of the bytes (~5 KB a posting), so a caller that keeps only
        what it derives from them holds one chunk of texts at a time.

        `texts_from` (an ISO timestamp): text and snippet only for rows received at or after it (the
        job has projected the older ones already); None: for every row. `size`: LOGGED_CHUNK_ROWS if None."""
        text_columns = "p.text, p.snippet" if texts_from is None else (
            "CASE WHEN p.received_at >= %s THEN p.text END, CASE WHEN p.received_at >= %s THEN p.snippet END"
        )  # fmt: skip
        sql = (
            f"SELECT p.device_id, p.uuid, p.created_at, p.received_at, p.source, p.model_name, {text_columns},"
            " p.label, p.p1, s.model_name, s.p1 FROM predictions p LEFT JOIN prediction_shadows s"
            " ON s.device_id = p.device_id AND s.uuid = p.uuid ORDER BY p.created_at, p.device_id, p.uuid"
        )
        params = () if texts_from is None else (texts_from, texts_from)
        sql = sql.replace("%s", self.PARAM) if texts_from is not None else sql
        for rows in self._read_chunks(sql, params, size or LOGGED_CHUNK_ROWS):
            yield [
                dict(
                    zip(
                        LOGGED_COLUMNS,
                        (*row[:2], iso_utc(utc_timestamp(row[2])), iso_utc(utc_timestamp(row[3])), *row[4:]),
                    )
                )
                for row in rows
            ]

    def device_skew(self) -> list[dict]:
        """The latest skew summary each device sent, per window."""
        rows = self._read(
            "SELECT device_id, window_label, computed_at, documents, alerts, summary FROM device_skew"
            " ORDER BY device_id, computed_at"
        )
        return [
            {
                "device_id": row[0],
                "window": row[1],
                "computed_at": iso_utc(utc_timestamp(row[2])),
                "documents": row[3],
                "alerts": row[4],
                "summary": row[5] if isinstance(row[5], dict) else json.loads(row[5]),
            }
            for row in rows
        ]


# --- shared by the engines ------------------------------------------------------------------------


def utc_timestamp(value: str | datetime) -> datetime:
    """A contract timestamp (ISO 8601 with an offset) as an aware UTC datetime."""
    parsed = parse_timestamp(value) if isinstance(value, str) else value
    return parsed.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """The one text form of a timestamp in SQLite storage: sortable, microseconds, `Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_utc() -> datetime:
    return datetime.now(UTC)


def prediction_values(batch: dict) -> list[tuple]:
    """The batch's records as tuples in PREDICTION_COLUMNS order, `received_at` left as None.

    Raises UnstorableMessage for a value that no store can hold even though it passed the
    contract (e.g. a batch built without the contract's validation).
    """
    try:
        return [
            (
                batch["device_id"],
                r["uuid"],
                batch["batch_id"],
                None,
                utc_timestamp(r["created_at"]),
                r.get("source"),
                r.get("model_name"),
                r.get("model_version"),
                r.get("text_sha256"),
                r.get("text"),
                r.get("snippet"),
                int(r["label"]),
                r["label_name"],
                float(r["probabilities"][0]),
                float(r["probabilities"][1]),
                None if r.get("latency_ms") is None else float(r["latency_ms"]),
            )
            for r in batch["records"]
        ]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise UnstorableMessage(f"a record cannot be stored: {exc}") from exc


def shadow_values(batch: dict) -> list[tuple]:
    """(device_id, uuid, model_name, model_version, p0, p1) for every record with a shadow prediction."""
    return [
        (
            batch["device_id"],
            r["uuid"],
            r["shadow"]["model_name"],
            r["shadow"].get("model_version"),
            float(r["shadow"]["probabilities"][0]),
            float(r["shadow"]["probabilities"][1]),
        )
        for r in batch["records"]
        if r.get("shadow")
    ]


def skew_values(batch: dict) -> tuple | None:
    """(device_id, window, computed_at, documents, alerts, summary JSON) of a batch's skew, or None."""
    skew = batch.get("skew")
    if not skew:
        return None
    return (
        batch["device_id"],
        skew["window"],
        utc_timestamp(skew["computed_at"]),
        int(skew["documents"]),
        len(skew["alerts"]),
        json.dumps(skew, sort_keys=True),
    )


_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The store URL as it may appear in a log line: any password replaced by `***`."""
    url = _CONNINFO_PASSWORD.sub(r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
