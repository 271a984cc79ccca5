-- Issue 12: the energy page reads one row per 15-minute window of a dense meter instead of every reading in it.
--
-- A row sums one meter's readings of one window [window_ms, window_ms + 900000) and exists only where the window
-- holds at least two readings: a meter read every 15 minutes (the utility fleet) gets none, so hot storage per
-- reading does not grow for it; a meter read every 10 s gets one row per 90 readings. Ingest keeps the rows in the
-- statement that stores the readings (central/ingest/postgres.py): a window's row is made, from the readings
-- already stored in it plus the new ones, when its second reading arrives, and updated by every later one.
--
-- Invariant the energy statement relies on: where a row exists it counts every reading of its window. Windows
-- without a row are summed from reading_rows. ``inexact`` marks a window whose sums must be taken reading by
-- reading (a METER_REPLACED reading, or readings of two gateways; also a row that two gateways' transactions
-- made at once, which may count the older readings twice): the caller then takes the reading-by-reading path.
CREATE TABLE reading_windows (
    meter_key  int      NOT NULL,
    window_ms  bigint   NOT NULL,
    readings   int      NOT NULL CHECK (readings >= 1),
    -- [timestamp_ms, seq, import_wh, export_wh] of the window's last reading in (timestamp, seq) order
    last       bigint[] NOT NULL CHECK (cardinality(last) = 4),
    device_key int      NOT NULL,  -- a gateway that reported in the window
    inexact    boolean  NOT NULL,
    PRIMARY KEY (meter_key, window_ms)
);

-- The rows of one meter's windows starting in [from_ms, to_ms), rebuilt from reading_rows (backfill, repair).
CREATE FUNCTION reading_windows_rebuild(p_meter int, p_from bigint, p_to bigint) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM reading_windows WHERE meter_key = p_meter AND window_ms >= p_from AND window_ms < p_to;
    INSERT INTO reading_windows (meter_key, window_ms, readings, last, device_key, inexact)
    SELECT x.meter_key, x.window_ms, count(*)::int, max(ARRAY[x.timestamp_ms, x.seq, x.import_wh, x.export_wh]),
           min(x.device_key), bool_or(x.flags & 2 <> 0) OR min(x.device_key) <> max(x.device_key)
    FROM (SELECT r.*, r.timestamp_ms - ((r.timestamp_ms % 900000) + 900000) % 900000 AS window_ms
          FROM reading_rows r
          WHERE r.meter_key = p_meter AND r.timestamp_ms >= p_from - 900000 AND r.timestamp_ms < p_to + 900000) x
    WHERE x.window_ms >= p_from AND x.window_ms < p_to
    GROUP BY x.meter_key, x.window_ms
    HAVING count(*) >= 2;
$$;

-- The archive job deletes the rows of the day it archives (rows arrive roughly in time order: a BRIN index is
-- enough, a few pages).
CREATE INDEX reading_windows_window ON reading_windows USING brin (window_ms);

-- No backfill: a window without a row is summed from its readings, which is what the energy statement did before;
-- ingest makes the row when the window's next reading arrives, from the readings already stored in it.
