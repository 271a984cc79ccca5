-- Verified readings (owner: central-ingest). One row per accepted record, keeping the exact signed bytes.
-- Energy registers are cumulative Wh (u64 on the wire; a value above 2^63-1 is rejected as malformed at ingest).

CREATE TABLE readings (
    device_id    text        NOT NULL REFERENCES devices(device_id),
    seq          bigint      NOT NULL CHECK (seq >= 1),
    meter_id     uuid        NOT NULL REFERENCES meters(id),
    meter_serial text        NOT NULL,
    timestamp_ms bigint      NOT NULL,                 -- UTC ms when the meter was read (device clock)
    import_wh    bigint      NOT NULL CHECK (import_wh >= 0),   -- cumulative A+
    export_wh    bigint      NOT NULL CHECK (export_wh >= 0),   -- cumulative A-
    power_w      integer,                              -- NULL = not available
    flags        integer     NOT NULL,                 -- bit0 CLOCK_UNSYNCED, bit1 METER_REPLACED
    prev_hash    bytea       NOT NULL CHECK (length(prev_hash) = 32),
    record_hash  bytea       NOT NULL CHECK (length(record_hash) = 32),   -- SHA-256 of raw
    raw          bytea       NOT NULL,                 -- the signed record (protocol 3.1), for later proofs
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq)
);
-- Per-meter time-range queries (readings API, settlement windows).
CREATE INDEX readings_meter_time ON readings (meter_id, timestamp_ms, seq);
-- Register neighbours of a record by seq (ingest's monotonicity check).
CREATE INDEX readings_device_meter_seq ON readings (device_id, meter_serial, seq);

-- Highest stored seq per device and its record hash (answers chain resync, protocol 3.5).
CREATE TABLE reading_chain_heads (
    device_id  text        PRIMARY KEY REFERENCES devices(device_id),
    last_seq   bigint      NOT NULL,
    last_hash  bytea       NOT NULL CHECK (length(last_hash) = 32),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Seq ranges below the chain head never received (inclusive). Shrink or vanish as late records arrive.
CREATE TABLE reading_gaps (
    device_id   text        NOT NULL REFERENCES devices(device_id),
    first_seq   bigint      NOT NULL,
    last_seq    bigint      NOT NULL CHECK (last_seq >= first_seq),
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, first_seq)
);
