-- The collector's first schema. IF NOT EXISTS: databases created before numbered migrations
-- existed already hold exactly these tables, and are adopted as version 1.
CREATE TABLE IF NOT EXISTS predictions (
    uuid TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
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
    latency_ms REAL
);
CREATE INDEX IF NOT EXISTS predictions_device ON predictions(device_id, created_at);
CREATE TABLE IF NOT EXISTS ota_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    event TEXT NOT NULL,
    channel TEXT,
    sequence INTEGER,
    version TEXT,
    sha256 TEXT,
    reason TEXT,
    detail TEXT,
    at TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped_on_device (
    device_id TEXT PRIMARY KEY,
    rows INTEGER NOT NULL
);
