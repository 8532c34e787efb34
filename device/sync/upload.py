"""The upload pipeline: unsynced store rows -> contract batches -> marked synced once the collector has them.

Guarantee: at least once, exactly once after the collector's (device_id, uuid) de-duplication.
- The SQLite store *is* the buffer: rows are read oldest first and packed into batches within the
  contract's record and size limits; at most `max_inflight` batches wait for confirmation at a time.
- A row is marked synced only on `confirm(batch_id)`: the collector's acknowledgement that it
  committed the batch (device.sync.transport). A broker taking the batch is not delivery; its queue
  for an absent collector can overflow. A refused batch (`refuse(batch_id, reason)`) keeps its rows
  and holds publishing back for a while. A batch the collector kept as a dead letter
  (`dead_lettered(batch_id)`) is marked synced too, with a warning: re-sending it cannot help.
- A batch not confirmed within the acknowledgement timeout (counted from when it was sent, or from
  the transport's last reconnect) is given up on: its rows are read again and re-sent, and the
  collector drops the duplicates. Each timeout that passes without any confirmation doubles the
  next one (from `ack_timeout_s` up to MAX_ACK_TIMEOUT_S), so a collector away for hours costs one
  re-send of the in-flight window every quarter of an hour, not a flood of copies in the broker's
  queue; the first confirmation resets it. A late confirmation of a batch given up on still marks
  its rows synced.

Buffer cap (`buffer_cap_rows`): when more rows than the cap wait for upload, the oldest unsynced rows
are deleted (device.sync.buffer_cap), counted in a ledger kept on disk (`ledger_path`), and reported
in the next batch's `dropped_rows` until one such batch is confirmed.

No MQTT here: the pipeline speaks to a `BatchTransport`, so it runs against a real store and an
in-memory transport in the tests. It is single-threaded: the sync agent calls `step()`, `confirm()`,
`dead_lettered()` and `refuse()` from its upload thread only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from device.sync.buffer_cap import DropLedger, drop_oldest_unsynced
from shared.mqtt.contract import (
    MAX_RECORDS_PER_BATCH,
    MAX_SNIPPET_CHARS,
    MAX_TEXT_CHARS,
    PREDICTION_BATCH,
    PREDICTION_RECORD,
    ContractError,
    validate_object,
)

log = logging.getLogger("careeredge.sync")

MAX_INFLIGHT_BATCHES = 8
ACK_TIMEOUT_S = 60.0
MAX_ACK_TIMEOUT_S = 900.0
REMEMBERED_GIVEN_UP = 256  # batches given up on whose late confirmation still counts
REFUSED_BACKOFF_S = 5.0
CAP_CHECK_INTERVAL_S = 5.0


class BatchTransport(Protocol):
    """What the pipeline needs from a connection. The transport reports each batch's fate back by
    calling `UploadPipeline.confirm(batch_id)` or `UploadPipeline.refuse(batch_id, reason)`."""

    @property
    def connected_since(self) -> float | None:
        """`time.monotonic()` when the current connection came up; None while disconnected."""

    def publish_batch(self, batch_id: str, payload: bytes) -> bool:
        """Queue one encoded batch for delivery; False when the transport refused to queue it."""


@dataclass
class UploadCounters:
    """What the status page shows about uploads: the buffer as last counted, rows since the agent started."""

    buffer_rows: int | None = None
    published_rows: int = 0
    inflight_rows: int = 0
    acked_rows: int = 0
    dead_lettered_rows: int = 0
    dropped_rows: int = 0
    invalid_rows: int = 0
    last_ack_at: str | None = None


@dataclass
class _Inflight:
    uuids: list[str]
    sent_at: float
    dropped_rows: int


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_to_record(row: dict) -> dict:
    """A store row as the contract's prediction record (text and snippet capped to the contract)."""
    created_at = row["created_at"]
    if isinstance(created_at, (int, float)):
        created_at = datetime.fromtimestamp(created_at, UTC).isoformat(timespec="milliseconds")
    text = row.get("text")
    return {
        "uuid": row["uuid"],
        "created_at": str(created_at),
        "source": row.get("source"),
        "model_name": row.get("model_name"),
        "model_version": None if row.get("model_version") is None else str(row["model_version"]),
        "text_sha256": row.get("text_sha256"),
        "text": text[:MAX_TEXT_CHARS] if isinstance(text, str) else None,
        "snippet": (row.get("snippet") or "")[:MAX_SNIPPET_CHARS] or None,
        "label": int(row["label"]),
        "label_name": row["label_name"],
        "probabilities": [min(1.0, max(0.0, float(row["p0"]))), min(1.0, max(0.0, float(row["p1"])))],
        "latency_ms": None if row.get("latency_ms") is None else max(0.0, float(row["latency_ms"])),
        **_shadow_field(row),
    }


def _shadow_field(row: dict) -> dict:
    """The optional `shadow` field: present only when a shadow model answered for this row."""
    if row.get("shadow_model") is None or row.get("shadow_p0") is None:
        return {}
    probabilities = [min(1.0, max(0.0, float(row[key]))) for key in ("shadow_p0", "shadow_p1")]
    version = row.get("shadow_version")
    return {"shadow": {"model_name": row["shadow_model"], "model_version": version, "probabilities": probabilities}}


class UploadPipeline:
    def __init__(
        self,
        store: Any,
        transport: BatchTransport,
        device_id: str,
        batch_size: int = 200,
        buffer_cap_rows: int = 100_000,
        counters: UploadCounters | None = None,
        max_inflight: int = MAX_INFLIGHT_BATCHES,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        ledger_path: Path | None = None,
    ):
        self.store = store
        self.transport = transport
        self.device_id = device_id
        self.batch_size = min(batch_size, MAX_RECORDS_PER_BATCH)  # the contract caps records per batch
        self.buffer_cap_rows = buffer_cap_rows
        self.counters = counters or UploadCounters()
        self.max_inflight = max_inflight
        self.ack_timeout_s = ack_timeout_s
        self.clock = clock
        self._inflight: dict[str, _Inflight] = {}  # by batch_id
        self._given_up: OrderedDict[str, _Inflight] = OrderedDict()  # expired, still confirmable late
        self.current_ack_timeout_s = ack_timeout_s
        self._inflight_uuids: set[str] = set()
        self._pending: deque[dict] = deque()  # read-ahead of unsynced rows, dropped on any doubt
        self._invalid_uuids: set[str] = set()
        self._hold_until = 0.0
        # Set by the composition root when the daemon monitors its own skew (device.monitoring).
        self.skew_summary: Callable[[], dict | None] | None = None
        self.drops = DropLedger(ledger_path)
        self.counters.dropped_rows = self.drops.total
        self._last_cap_check: float | None = None

    @property
    def inflight_batches(self) -> int:
        return len(self._inflight)

    # --- one iteration of the upload loop -----------------------------------------------------------

    def step(self) -> int:
        """Enforce the cap (every CAP_CHECK_INTERVAL_S), give up on overdue batches, publish what the
        in-flight window allows. Returns the number of rows published."""
        now = self.clock()
        if self._last_cap_check is None or now - self._last_cap_check >= CAP_CHECK_INTERVAL_S:
            self.enforce_cap()
            self._last_cap_check = now
        self.expire_unconfirmed(now)
        if self.transport.connected_since is None or now < self._hold_until:
            return 0
        return self.publish_some()

    def publish_some(self) -> int:
        free = self.max_inflight - len(self._inflight)
        if free <= 0:
            return 0
        if not self._pending:
            self._refill_pending()
        published = 0
        while free > 0 and self._pending:
            rows = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
            for batch_id, uuids, payload, dropped in self._encode(rows):
                if not self.transport.publish_batch(batch_id, payload):
                    self.drops.give_back(dropped)
                    self._pending.clear()  # the transport refused to queue it; the rows stay unsynced
                    return published
                self._inflight[batch_id] = _Inflight(uuids, self.clock(), dropped)
                self._inflight_uuids.update(uuids)
                self.counters.inflight_rows = len(self._inflight_uuids)
                self.counters.published_rows += len(uuids)
                published += len(uuids)
                free -= 1
        return published

    # --- what the transport reports -----------------------------------------------------------------

    def confirm(self, batch_id: str) -> None:
        """The collector committed the batch: mark its rows synced. Unknown ids are ignored (a batch from
        before a restart: its rows were re-read and go again, and the collector drops the duplicates)."""
        entry = self._forget(batch_id) or self._given_up.pop(batch_id, None)
        if entry is None:
            return
        try:
            newly_synced = self.store.mark_synced(entry.uuids)
        except Exception:
            self.drops.give_back(entry.dropped_rows)  # the rows stay unsynced and go again, with the count
            raise
        self.drops.acknowledged(entry.dropped_rows)
        self.counters.acked_rows += newly_synced  # a late confirmation and its re-sent copy count once
        self.counters.last_ack_at = now_iso()
        self.current_ack_timeout_s = self.ack_timeout_s

    def dead_lettered(self, batch_id: str) -> None:
        """The collector kept the batch as a dead letter: its rows will never be stored, nor will a re-send
        change that. Mark them synced (they are in the collector's dead_letters table) and say so."""
        entry = self._inflight.get(batch_id) or self._given_up.get(batch_id)
        if entry is not None:
            log.warning(
                "the collector kept batch %s (%d predictions) as a dead letter; not sending them again",
                batch_id,
                len(entry.uuids),
            )
            self.counters.dead_lettered_rows += len(entry.uuids)
        self.confirm(batch_id)

    def refuse(self, batch_id: str, reason: str) -> None:
        """The batch was not delivered: keep its rows and hold publishing back for REFUSED_BACKOFF_S."""
        entry = self._forget(batch_id)
        if entry is None:
            return
        self.drops.give_back(entry.dropped_rows)
        self._hold_until = self.clock() + REFUSED_BACKOFF_S
        log.warning("%s; keeping %d rows and retrying in %.0fs", reason, len(entry.uuids), REFUSED_BACKOFF_S)

    def expire_unconfirmed(self, now: float) -> None:
        """Give up on batches the transport never reported on; their rows are read and sent again.
        The clock of a batch restarts when the transport reconnects (it re-sends what it had queued)."""
        connected_since = self.transport.connected_since
        if connected_since is None:
            return
        timeout = self.current_ack_timeout_s
        expired = [
            batch_id
            for batch_id, entry in self._inflight.items()
            if now - max(entry.sent_at, connected_since) > timeout
        ]
        for batch_id in expired:
            entry = self._forget(batch_id)
            self.drops.give_back(entry.dropped_rows)
            self._given_up[batch_id] = entry
        while len(self._given_up) > REMEMBERED_GIVEN_UP:
            self._given_up.popitem(last=False)
        if expired:
            self.current_ack_timeout_s = min(timeout * 2, MAX_ACK_TIMEOUT_S)
            log.warning(
                "%d batches were not acknowledged by the collector within %.0fs; re-sending them (next wait %.0fs)",
                len(expired),
                timeout,
                self.current_ack_timeout_s,
            )

    def _forget(self, batch_id: str) -> _Inflight | None:
        entry = self._inflight.pop(batch_id, None)
        if entry is not None:
            self._inflight_uuids.difference_update(entry.uuids)
            self.counters.inflight_rows = len(self._inflight_uuids)
        return entry

    # --- the buffer ---------------------------------------------------------------------------------

    def enforce_cap(self) -> int:
        """Drop the oldest unsynced rows beyond `buffer_cap_rows`; returns how many were dropped."""
        waiting = self.refresh_buffer_rows()
        overflow = waiting - self.buffer_cap_rows
        if overflow <= 0:
            return 0
        dropped = drop_oldest_unsynced(self.store, overflow)
        self.drops.dropped(dropped)
        self.counters.dropped_rows = self.drops.total
        self.counters.buffer_rows = waiting - dropped
        log.warning(
            "offline buffer over its cap of %d rows: dropped the %d oldest unsynced predictions",
            self.buffer_cap_rows,
            dropped,
        )
        return dropped

    def refresh_buffer_rows(self) -> int:
        self.counters.buffer_rows = self.store.count_unsynced()
        return self.counters.buffer_rows

    def forget_read_ahead(self) -> None:
        """After an error: read the store again rather than trust rows read before it."""
        self._pending.clear()

    def _refill_pending(self) -> None:
        """Read the next page of unsynced rows once, rather than once per batch."""
        skip = self._inflight_uuids | self._invalid_uuids
        page = self.batch_size * self.max_inflight
        self._pending.extend(r for r in self.store.unsynced(limit=len(skip) + page) if r["uuid"] not in skip)

    # --- batches ------------------------------------------------------------------------------------

    def _encode(self, rows: list[dict]) -> list[tuple[str, list[str], bytes, int]]:
        """One or more (batch_id, uuids, payload, dropped) within the contract's size limit."""
        records = []
        for row in rows:
            try:
                records.append(row_to_record(row))
            except (KeyError, TypeError, ValueError) as exc:
                self._mark_invalid(row.get("uuid"), exc)
        if not records:
            return []
        # The skew summary is taken once per batch to send (taking it marks it sent), so it rides on the
        # batch whether it goes whole, split for size, or again without a row that breaks the contract.
        skew = self.skew_summary() if self.skew_summary is not None else None
        try:
            return self._split_to_fit(records, skew)
        except ContractError:
            pass
        # Some row breaks the contract: find it, so one bad row never blocks the queue. It stays in
        # the store, unsynced, for inspection.
        valid = []
        for record in records:
            try:
                validate_object(record, PREDICTION_RECORD, "record")
                valid.append(record)
            except ContractError as exc:
                self._mark_invalid(record["uuid"], exc)
        return self._split_to_fit(valid, skew) if valid else []

    def _mark_invalid(self, row_uuid, exc: Exception) -> None:
        log.warning("not uploading prediction %s: %s", row_uuid, exc)
        self._invalid_uuids.add(row_uuid)
        self.counters.invalid_rows += 1

    def _split_to_fit(self, records: list[dict], skew: dict | None) -> list[tuple[str, list[str], bytes, int]]:
        dropped = self.drops.take()
        batch = {
            "schema": PREDICTION_BATCH.schema_id,
            "device_id": self.device_id,
            "batch_id": str(uuid.uuid4()),
            "sent_at": now_iso(),
            "dropped_rows": dropped,
            "records": records,
        }
        if skew:
            batch["skew"] = skew  # the device's own skew, sent with its logs (shared/mqtt/CONTRACT.md)
        try:
            return [(batch["batch_id"], [r["uuid"] for r in records], PREDICTION_BATCH.encode(batch), dropped)]
        except ContractError as exc:
            self.drops.give_back(dropped)
            if exc.reason != "oversized" or len(records) == 1:
                raise
        half = len(records) // 2
        return self._split_to_fit(records[:half], skew) + self._split_to_fit(records[half:], None)
