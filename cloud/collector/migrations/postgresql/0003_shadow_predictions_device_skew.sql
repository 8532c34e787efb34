-- Shadow mode: the second model's answer for a served prediction (a device's [model] shadow),
-- beside the prediction it shadows. Absent for devices that run no shadow.
CREATE TABLE prediction_shadows (
    device_id text NOT NULL,
    uuid text NOT NULL,
    model_name text NOT NULL,
    model_version text,
    p0 double precision NOT NULL,
    p1 double precision NOT NULL,
    PRIMARY KEY (device_id, uuid)
);

-- The skew a device computed from its own store and sent with its logs: the latest per window.
CREATE TABLE device_skew (
    device_id text NOT NULL,
    window_label text NOT NULL,
    computed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    documents bigint NOT NULL,
    alerts integer NOT NULL,
    summary jsonb NOT NULL,           -- the device's JSON summary as sent (shared/mqtt/CONTRACT.md)
    PRIMARY KEY (device_id, window_label)
);
