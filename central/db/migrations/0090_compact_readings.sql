-- Issue 15: compact, time-partitioned reading storage (owner: central-ingest).
--
-- One stored reading was ~780 B (the 44-character device id in the row and two indexes, a uuid and the serial per
-- row, decoded fields *and* the raw record, both hashes). Now ``reading_rows`` keeps each signed record exactly once,
-- in pieces: the fields as columns, its prev_hash and its 64-byte signature. What the record repeats is not stored:
-- magic and version are constants, the device public key is ``devices.public_key`` (via a 4-byte ``device_key``),
-- the meter serial is ``meters.serial`` (via a 4-byte ``meter_key``). The signed bytes are rebuilt exactly
-- (``protocol.record.assemble``; the ``readings`` view below does it in SQL) and the record hash is SHA-256 of them,
-- so nothing the signature proves is stored twice. No foreign keys (ingest checks device and meter under its lock),
-- no ``received_at``. power_w keeps the wire's n/a value (-2^31) so no row needs a null bitmap.
--
-- Partitioned by RANGE (timestamp_ms) in spans of ``reading_partitioning.span_ms`` (default 1 day), aligned to the
-- epoch. Partitions are plain declarative ones, created ahead by the ``reading-partitions`` job and on demand by
-- ingest (``reading_partition_for``), never by a DEFAULT partition (rows there would block attaching a partition).
-- pg_partman is not used: the maintenance needed is "create ahead", "pack once written" and "archive then drop", and
-- the archive must export and check a partition before it is dropped, which is our job's logic anyway.
--
-- Indexes (each partition): (device_key, seq) for ingest's dedup/chain checks and the live feed; (meter_key,
-- timestamp_ms) for the readings API and accounting (ties in time are few; they are sorted after the index scan).
-- Uniqueness of (device, seq) is ingest's (it judges under the per-device lock); a unique index would have to include
-- the partition key and could not enforce it anyway. Every device and meter appends at its own place in these
-- indexes, so their pages split half-full and stay so while a partition is written; once a partition's range is a
-- day old the job rebuilds its indexes (REINDEX CONCURRENTLY, packed to the fillfactor) and records it here.
--
-- Existing data: this migration moves every row of the old ``readings`` table in one transaction (fine for the
-- databases that exist today; a database too large for one transaction needs the move split into the schema part,
-- time slices of the same INSERT ... SELECT and the drop: docs/scaling.md). Afterwards the old table is dropped.

ALTER TABLE devices ADD COLUMN device_key integer GENERATED ALWAYS AS IDENTITY;
ALTER TABLE devices ADD CONSTRAINT devices_device_key UNIQUE (device_key);
ALTER TABLE meters ADD COLUMN meter_key integer GENERATED ALWAYS AS IDENTITY;
ALTER TABLE meters ADD CONSTRAINT meters_meter_key UNIQUE (meter_key);

CREATE TABLE reading_partitioning (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    span_ms   bigint  NOT NULL CHECK (span_ms >= 60000)
);
INSERT INTO reading_partitioning (span_ms) VALUES (86400000);

CREATE TABLE reading_rows (
    seq          bigint   NOT NULL CHECK (seq >= 1),
    timestamp_ms bigint   NOT NULL,
    import_wh    bigint   NOT NULL CHECK (import_wh >= 0),
    export_wh    bigint   NOT NULL CHECK (export_wh >= 0),
    device_key   integer  NOT NULL,
    meter_key    integer  NOT NULL,
    power_w      integer  NOT NULL,                   -- -2147483648 = not available (as on the wire)
    flags        smallint NOT NULL,
    prev_hash    bytea    NOT NULL CHECK (length(prev_hash) = 32),
    signature    bytea    NOT NULL CHECK (length(signature) = 64)
) PARTITION BY RANGE (timestamp_ms);
CREATE INDEX reading_rows_device_seq ON reading_rows (device_key, seq);
CREATE INDEX reading_rows_meter_time ON reading_rows (meter_key, timestamp_ms);

-- Partitions whose indexes were packed after their range closed (central.archive.pg, the reading-archive job).
CREATE TABLE reading_partitions_packed (
    from_ms   bigint      PRIMARY KEY,
    packed_at timestamptz NOT NULL DEFAULT now()
);

-- Archived partitions (central.archive): one file per partition range, checked before the partition was dropped.
CREATE TABLE reading_archives (
    from_ms     bigint      PRIMARY KEY,
    to_ms       bigint      NOT NULL CHECK (to_ms > from_ms),
    object_key  text        NOT NULL UNIQUE,
    readings    bigint      NOT NULL,
    bytes       bigint      NOT NULL,
    sha256      bytea       NOT NULL CHECK (length(sha256) = 32),
    archived_at timestamptz NOT NULL DEFAULT now()
);

-- The partition holding ``at_ms``, created and attached when missing. CREATE TABLE + ATTACH (SHARE UPDATE
-- EXCLUSIVE on the parent) rather than CREATE TABLE ... PARTITION OF (ACCESS EXCLUSIVE), so concurrent ingest
-- transactions reading or writing other partitions are not blocked; creators are serialised by the row lock on
-- ``reading_partitioning``. A range already archived is refused: late rows there would never reach the archive.
CREATE FUNCTION reading_partition_for(at_ms bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    span bigint;
    lo bigint;
    part text;
BEGIN
    SELECT span_ms INTO span FROM reading_partitioning;
    lo := at_ms - (((at_ms % span) + span) % span);
    part := 'reading_rows_p' || lo::text;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = part AND c.relnamespace = current_schema()::regnamespace) THEN
        RETURN part;
    END IF;
    PERFORM 1 FROM reading_partitioning FOR UPDATE;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = part AND c.relnamespace = current_schema()::regnamespace) THEN
        RETURN part;
    END IF;
    IF EXISTS (SELECT 1 FROM reading_archives a WHERE a.from_ms < lo + span AND a.to_ms > lo) THEN
        RAISE EXCEPTION 'readings at % fall in an archived range', at_ms USING ERRCODE = 'GTX01';
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE reading_rows INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('ALTER TABLE reading_rows ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', part, lo, lo + span);
    RETURN part;
END
$$;

-- Little-endian bytes of a two's-complement hex string (to_hex of an int or bigint), for the view below.
CREATE FUNCTION gtx_le(hex text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT decode(string_agg(substr(hex, i, 2), '' ORDER BY i DESC), 'hex') FROM generate_series(1, length(hex), 2) AS i
$$;

-- Keep the old table's rows: partitions for every range they cover, then move them.
DO $$
DECLARE
    t bigint;
BEGIN
    FOR t IN SELECT DISTINCT timestamp_ms - (((timestamp_ms % 86400000) + 86400000) % 86400000) FROM readings LOOP
        PERFORM reading_partition_for(t);
    END LOOP;
END
$$;
INSERT INTO reading_rows (seq, timestamp_ms, import_wh, export_wh, device_key, meter_key, power_w, flags, prev_hash,
                          signature)
SELECT r.seq, r.timestamp_ms, r.import_wh, r.export_wh, d.device_key, m.meter_key,
       coalesce(r.power_w, -2147483648), r.flags, r.prev_hash, substr(r.raw, length(r.raw) - 63)
FROM readings r JOIN devices d ON d.device_id = r.device_id JOIN meters m ON m.id = r.meter_id;
DROP TABLE readings;

-- The full view of a stored reading, as the old table had it (device id, meter id and serial, the signed record
-- and its hash rebuilt in SQL). Convenient for ad-hoc queries and tests; hot paths read ``reading_rows`` and rebuild
-- the record in Python.
CREATE VIEW readings AS
SELECT d.device_id, r.seq, m.id AS meter_id, m.serial AS meter_serial, r.timestamp_ms, r.import_wh, r.export_wh,
       nullif(r.power_w, -2147483648) AS power_w, r.flags::integer AS flags, r.prev_hash, r.signature,
       x.raw, sha256(x.raw) AS record_hash, r.device_key, r.meter_key
FROM reading_rows r
JOIN devices d ON d.device_key = r.device_key
JOIN meters m ON m.meter_key = r.meter_key
CROSS JOIN LATERAL (
    SELECT '\x4754585201'::bytea || d.public_key || decode(lpad(to_hex(length(m.serial)), 2, '0'), 'hex')
           || convert_to(m.serial, 'SQL_ASCII')
           || gtx_le(lpad(to_hex(r.seq), 16, '0')) || gtx_le(lpad(to_hex(r.timestamp_ms), 16, '0'))
           || gtx_le(lpad(to_hex(r.import_wh), 16, '0')) || gtx_le(lpad(to_hex(r.export_wh), 16, '0'))
           || gtx_le(lpad(to_hex(r.power_w), 8, '0')) || gtx_le(lpad(to_hex(r.flags::integer), 4, '0'))
           || r.prev_hash || r.signature AS raw
) x;
