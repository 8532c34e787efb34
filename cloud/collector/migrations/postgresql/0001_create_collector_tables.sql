-- The collector's first schema (the same tables as SQLite's version 1, in PostgreSQL types).
CREATE TABLE predictions (
    uuid text PRIMARY KEY,
    device_id text NOT NULL,
    batch_id text NOT NULL,
    received_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    source text,
    model_name text,
    model_version text,
    text_sha256 text,
    text text,
    snippet text,
    label smallint NOT NULL,
    label_name text NOT NULL,
    p0 double precision NOT NULL,
    p1 double precision NOT NULL,
    latency_ms double precision
);
CREATE INDEX predictions_device ON predictions(device_id, created_at);
CREATE TABLE ota_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text NOT NULL,
    event text NOT NULL,
    channel text,
    sequence bigint,
    version text,
    sha256 text,
    reason text,
    detail text,
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE TABLE rejections (
    reason text PRIMARY KEY,
    count bigint NOT NULL
);
CREATE TABLE dropped_on_device (
    device_id text PRIMARY KEY,
    rows bigint NOT NULL
);
