"""Collector storage in PostgreSQL: N collectors, on as many machines, share one database.

psycopg 3 with a small connection pool per collector (its writer thread needs one connection; the
second serves reads). Each MQTT batch is ONE statement, so one round trip and one implicit
transaction: the rows go in through `unnest` of one array per column, `ON CONFLICT (device_id,
uuid) DO NOTHING` makes a redelivered or re-sent batch harmless, and data-modifying CTEs record the
batch in `batches` and add its `dropped_rows` in the same atomic step (only the first time that
batch id arrives). Statements are prepared by psycopg after a few uses.

Schema changes are the numbered files in migrations/postgresql/, applied in one transaction under
an advisory lock, so collectors starting together migrate once. Back the database up before an
upgrade (pg_dump): unlike the SQLite file, it is not copied here.

A server that does not answer, or refuses the login, becomes `StorageUnavailable` with libpq's
one-line reason; the URL appears in messages only with its password redacted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from cloud.collector import schema
from cloud.collector.storage_api import (
    PREDICTION_COLUMNS,
    DeadLetter,
    StorageReads,
    StorageUnavailable,
    StoredBatch,
    UnstorableMessage,
    prediction_values,
    redact_url,
    shadow_values,
    skew_values,
    utc_timestamp,
)

log = logging.getLogger("careeredge.collector")

# Any constant works; it only has to be the same for every collector migrating one database.
_MIGRATION_LOCK = 0x63617265_65646765  # "careedge"

_INSERT_BATCH = """
WITH stored AS (
    INSERT INTO predictions (device_id, uuid, batch_id, received_at, created_at, source, model_name,
                             model_version, text_sha256, text, snippet, label, label_name, p0, p1, latency_ms)
    SELECT %(device_id)s, r.uuid, %(batch_id)s, now(), r.created_at, r.source, r.model_name, r.model_version,
           r.text_sha256, r.text, r.snippet, r.label, r.label_name, r.p0, r.p1, r.latency_ms
    FROM unnest(%(uuid)s::text[], %(created_at)s::timestamptz[], %(source)s::text[], %(model_name)s::text[],
                %(model_version)s::text[], %(text_sha256)s::text[], %(text)s::text[], %(snippet)s::text[],
                %(label)s::smallint[], %(label_name)s::text[], %(p0)s::float8[], %(p1)s::float8[],
                %(latency_ms)s::float8[])
         AS r(uuid, created_at, source, model_name, model_version, text_sha256, text, snippet, label, label_name,
              p0, p1, latency_ms)
    ON CONFLICT (device_id, uuid) DO NOTHING
    RETURNING 1
), batch AS (
    INSERT INTO batches (device_id, batch_id, received_at, records, stored, dropped_rows)
    SELECT %(device_id)s, %(batch_id)s, now(), %(records)s, count(*), %(dropped)s FROM stored
    ON CONFLICT (device_id, batch_id) DO NOTHING
    RETURNING 1
), dropped AS (
    INSERT INTO dropped_on_device (device_id, rows)
    SELECT %(device_id)s, %(dropped)s FROM batch WHERE %(dropped)s > 0
    ON CONFLICT (device_id) DO UPDATE SET rows = dropped_on_device.rows + excluded.rows
)
SELECT count(*) FROM stored
"""

# One array per record column; device_id, batch_id and received_at are one value per batch.
_PER_BATCH = {"device_id", "batch_id", "received_at"}
_ARRAY_COLUMNS = [(i, name) for i, name in enumerate(PREDICTION_COLUMNS) if name not in _PER_BATCH]

_INSERT_DEAD_LETTER = """
WITH letter AS (
    INSERT INTO dead_letters (received_at, collector, topic, reason, detail, payload_bytes, payload_sha256, payload)
    VALUES (now(), %(collector)s, %(topic)s, %(reason)s, %(detail)s, %(payload_bytes)s, %(payload_sha256)s,
            %(payload)s)
)
INSERT INTO rejections (reason, count) VALUES (%(reason)s, 1)
ON CONFLICT (reason) DO UPDATE SET count = rejections.count + 1
"""

# Errors that say the values cannot be stored (class 22 data exception, class 23 integrity
# violation, or a value psycopg cannot even encode); anything else from the server is an outage.
_VALUE_ERRORS = (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError, OverflowError)


class PostgresStorage(StorageReads):
    DELAY_SQL = "SELECT extract(epoch FROM received_at - created_at)::float8 FROM predictions"
    SCHEMA_VERSION_SQL = "SELECT coalesce(max(version), 0) FROM schema_migrations"
    PARAM = "%s"
    engine = "postgresql"

    def __init__(
        self,
        url: str,
        application_name: str = "careeredge-collector",
        pool_size: int = 2,
        connect_timeout_s: float = 5.0,
    ):
        self.url = url
        self.description = redact_url(url)
        self.application_name = application_name
        self.pool_size = pool_size
        self.connect_timeout_s = connect_timeout_s
        self._pool: ConnectionPool | None = None
        self._schema_ready = False
        self._lock = threading.Lock()
        # The pool logs every failed reconnection attempt; the collector reports an outage itself,
        # once, with the reason (a days-long outage must not flood the journal).
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

    # --- connection ------------------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.pool_size,
                    open=False,
                    name=self.application_name,
                    # Give up a reconnection cycle soon: the next request starts a fresh one, so a
                    # server that comes back is used within seconds, not after a long backoff.
                    reconnect_timeout=10.0,
                    kwargs={
                        "autocommit": True,
                        "application_name": self.application_name[:63],
                        "connect_timeout": max(1, round(self.connect_timeout_s)),
                    },
                )
                self._pool.open(wait=False)
            if self._schema_ready:
                return
            with self._connection() as conn:
                self._migrate(conn)
            self._schema_ready = True

    def _migrate(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
            for migration in schema.pending(self.engine, current, self.description):
                conn.execute(migration.sql)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,))
                log.info("collector store %s migrated to schema version %d", self.description, migration.version)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        if self._pool is None:
            raise StorageUnavailable(f"{self.description} is not open")
        try:
            with self._pool.connection(timeout=self.connect_timeout_s) as conn:
                yield conn
        except PoolTimeout:
            raise StorageUnavailable(f"{self.description}: {self._why_unreachable()}") from None
        except _VALUE_ERRORS as exc:
            raise UnstorableMessage(f"PostgreSQL refused the values: {_first_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StorageUnavailable(f"{self.description}: {_first_line(exc)}") from exc

    def _why_unreachable(self) -> str:
        """The pool only says it timed out; one direct attempt tells the operator why."""
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(self.connect_timeout_s))).close()
        except psycopg.Error as exc:
            return _first_line(exc)
        return f"no pooled connection within {self.connect_timeout_s:g}s"

    def _ready(self) -> None:
        if not self._schema_ready:
            self.open()

    # --- writes ----------------------------------------------------------------------------------

    def store_predictions(self, batch: dict) -> StoredBatch:
        return self.store_prediction_batches([batch])[0]

    def store_prediction_batches(self, batches: list[dict]) -> list[StoredBatch]:
        """One transaction; several batches go out in one pipeline (still one round trip)."""
        self._ready()
        params = [_batch_params(batch) for batch in batches]
        stored = []
        with self._connection() as conn:
            if len(params) == 1:
                stored.append(conn.execute(_INSERT_BATCH, params[0]).fetchone()[0])
            else:
                with conn.transaction():
                    cursor = conn.cursor()
                    cursor.executemany(_INSERT_BATCH, params, returning=True)
                    while True:
                        stored.append(cursor.fetchone()[0])
                        if not cursor.nextset():
                            break
        return [StoredBatch(b["device_id"], b["batch_id"], len(b["records"]), n) for b, n in zip(batches, stored)]

    def store_ota_event(self, event: dict) -> None:
        self._ready()
        values = {
            "device_id": event["device_id"],
            "event": event["event"],
            "channel": event.get("channel"),
            "sequence": event.get("sequence"),
            "version": event.get("version"),
            "sha256": event.get("sha256"),
            "reason": event.get("reason"),
            "detail": event.get("detail"),
            "at": utc_timestamp(event["at"]),
        }
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO ota_events (device_id, event, channel, sequence, version, sha256, reason, detail, at,"
                " received_at) VALUES (%(device_id)s, %(event)s, %(channel)s, %(sequence)s, %(version)s, %(sha256)s,"
                " %(reason)s, %(detail)s, %(at)s, now())",
                values,
            )

    def store_dead_letter(self, letter: DeadLetter) -> None:
        self._ready()
        with self._connection() as conn:
            conn.execute(
                _INSERT_DEAD_LETTER,
                {
                    "collector": letter.collector,
                    "topic": letter.topic,
                    "reason": letter.reason,
                    "detail": letter.detail,
                    "payload_bytes": len(letter.payload),
                    "payload_sha256": letter.payload_sha256,
                    "payload": letter.kept_payload,
                },
            )

    def store_monitoring(self, batches: list[dict]) -> None:
        shadows = [row for batch in batches for row in shadow_values(batch)]
        skews = [values for batch in batches if (values := skew_values(batch)) is not None]
        if not shadows and not skews:
            return
        self._ready()
        with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
            if shadows:
                cursor.executemany(
                    "INSERT INTO prediction_shadows VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", shadows
                )
            if skews:
                cursor.executemany(
                    "INSERT INTO device_skew VALUES (%s, %s, %s, now(), %s, %s, %s::jsonb)"
                    " ON CONFLICT (device_id, window_label) DO UPDATE SET computed_at = excluded.computed_at,"
                    " received_at = excluded.received_at, documents = excluded.documents, alerts = excluded.alerts,"
                    " summary = excluded.summary WHERE excluded.computed_at > device_skew.computed_at",
                    skews,
                )

    # --- read side (CLI summary, tests, bench; not part of the write interface) -------------------

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        self._ready()
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _read_chunks(self, sql: str, params: tuple, size: int) -> Iterator[list[tuple]]:
        # A server-side cursor: PostgreSQL keeps the result and sends `size` rows per fetch, all from
        # the statement's one snapshot. DECLARE needs a transaction block (the pool's connections
        # autocommit); a read-only one that ends with the last chunk.
        self._ready()
        with self._connection() as conn, conn.transaction():
            with conn.cursor(name="careeredge_read_chunks") as cursor:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(size):
                    yield rows

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            self._schema_ready = False


def _batch_params(batch: dict) -> dict:
    rows = prediction_values(batch)
    params = {name: [row[i] for row in rows] for i, name in _ARRAY_COLUMNS}
    params.update(
        device_id=batch["device_id"],
        batch_id=batch["batch_id"],
        records=len(rows),
        dropped=int(batch.get("dropped_rows") or 0),
    )
    return params


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
