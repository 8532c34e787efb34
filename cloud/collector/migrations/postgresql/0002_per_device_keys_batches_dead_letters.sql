-- A prediction is identified by (device_id, uuid): a uuid is unique only within the device that
-- made it, so one device must never be able to suppress another's rows by reusing its uuids.
ALTER TABLE predictions DROP CONSTRAINT predictions_pkey;
ALTER TABLE predictions ADD PRIMARY KEY (device_id, uuid);
DROP INDEX predictions_device;
CREATE INDEX predictions_created_at ON predictions(created_at);

-- One row per prediction batch committed: which (device_id, batch_id) are safely stored, with
-- how many of its records were new. Written in the same statement as the batch's rows.
CREATE TABLE batches (
    device_id text NOT NULL,
    batch_id text NOT NULL,
    received_at timestamptz NOT NULL,
    records integer NOT NULL,
    stored integer NOT NULL,
    dropped_rows bigint NOT NULL,
    PRIMARY KEY (device_id, batch_id)
);
CREATE INDEX batches_received_at ON batches(received_at);

-- Messages the collector acknowledged without storing them: they break the contract, or the
-- store refused their values. Kept (up to 1 MiB of payload) for inspection and replay.
CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    collector text NOT NULL,
    topic text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    payload_bytes integer NOT NULL,
    payload_sha256 text NOT NULL,
    payload bytea NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters(reason, received_at);
