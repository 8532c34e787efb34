-- Every prediction the device makes, from any front (cli, web, tui, api).
-- `uuid` is the identity the sync agent ships to the cloud, so a retried upload or a retried
-- API request (client-supplied id) can never create a second row.
CREATE TABLE predictions (
    uuid          TEXT PRIMARY KEY,
    created_at    TEXT NOT NULL,              -- ISO 8601 UTC, millisecond precision, "Z" suffix
    source        TEXT NOT NULL CHECK (source IN ('cli', 'web', 'tui', 'api')),
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    text          TEXT,                       -- NULL when [store] privacy = "hash"
    text_sha256   TEXT NOT NULL,
    snippet       TEXT NOT NULL,
    label         INTEGER NOT NULL CHECK (label IN (0, 1)),
    label_name    TEXT NOT NULL,
    p0            REAL NOT NULL,
    p1            REAL NOT NULL,
    latency_ms    REAL NOT NULL,
    synced_at     TEXT                        -- NULL until the sync agent has delivered the row
);

-- History pages read newest first, optionally by label.
CREATE INDEX predictions_created_at ON predictions (created_at);
CREATE INDEX predictions_label_created_at ON predictions (label, created_at);
-- The sync agent scans unsynced rows oldest first; a partial index keeps that scan small
-- however long the synced history grows.
CREATE INDEX predictions_unsynced ON predictions (created_at) WHERE synced_at IS NULL;
