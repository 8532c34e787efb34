-- Shadow mode: the second model's answer for a served prediction (a device's [model] shadow),
-- beside the prediction it shadows. Absent for devices that run no shadow.
CREATE TABLE prediction_shadows (
    device_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT,
    p0 REAL NOT NULL,
    p1 REAL NOT NULL,
    PRIMARY KEY (device_id, uuid)
);

-- The skew a device computed from its own store and sent with its logs: the latest per window.
CREATE TABLE device_skew (
    device_id TEXT NOT NULL,
    window_label TEXT NOT NULL,
    computed_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    documents INTEGER NOT NULL,
    alerts INTEGER NOT NULL,
    summary TEXT NOT NULL,            -- the device's JSON summary as sent (shared/mqtt/CONTRACT.md)
    PRIMARY KEY (device_id, window_label)
);
