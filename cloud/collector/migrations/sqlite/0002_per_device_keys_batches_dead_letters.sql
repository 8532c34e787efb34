-- A prediction is identified by (device_id, uuid): a uuid is unique only within the device that
-- made it, so one device must never be able to suppress another's rows by reusing its uuids.
CREATE TABLE predictions_by_device (
    device_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT,
    model_name TEXT,
    model_version TEXT,
    text_sha256 TEXT,
    text TEXT,
    snippet TEXT,
    label INTEGER NOT NULL,
    label_name TEXT NOT NULL,
    p0 REAL NOT NULL,
    p1 REAL NOT NULL,
    latency_ms REAL,
    PRIMARY KEY (device_id, uuid)
);
INSERT INTO predictions_by_device
    (device_id, uuid, batch_id, received_at, created_at, source, model_name, model_version, text_sha256,
     text, snippet, label, label_name, p0, p1, latency_ms)
SELECT device_id, uuid, batch_id, received_at, created_at, source, model_name, model_version, text_sha256,
       text, snippet, label, label_name, p0, p1, latency_ms
FROM predictions;
DROP TABLE predictions;
ALTER TABLE predictions_by_device RENAME TO predictions;
CREATE INDEX predictions_created_at ON predictions(created_at);

-- One row per prediction batch committed: which (device_id, batch_id) are safely stored, with
-- how many of its records were new. Written in the same transaction as the batch's rows.
CREATE TABLE batches (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    records INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    dropped_rows INTEGER NOT NULL,
    PRIMARY KEY (device_id, batch_id)
);
CREATE INDEX batches_received_at ON batches(received_at);

-- Messages the collector acknowledged without storing them: they break the contract, or the
-- store refused their values. Kept (up to 1 MiB of payload) for inspection and replay.
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    collector TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload_bytes INTEGER NOT NULL,
    payload_sha256 TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters(reason, received_at);
