-- Meter ownership periods (DESIGN D6/D7): who held a meter from when to when. Written by Meters.claim (opens a
-- period) and Meters.release (closes it) in the same transaction as the change of meters.owner_id. Accounting
-- attributes each (meter, window) to the owner holding the meter at the window's end; see
-- central/accounting/ownership.py for the rule.
CREATE TABLE meter_ownerships (
    id          bigserial PRIMARY KEY,
    meter_id    uuid NOT NULL REFERENCES meters(id) ON DELETE CASCADE, -- a stale registration's meters may go
    owner_id    uuid NOT NULL REFERENCES users(id),
    claimed_at  timestamptz NOT NULL,
    released_at timestamptz,                 -- NULL while the period is open (the current owner)
    CHECK (released_at IS NULL OR released_at >= claimed_at)
);
-- At most one open period per meter.
CREATE UNIQUE INDEX meter_ownerships_open ON meter_ownerships (meter_id) WHERE released_at IS NULL;
CREATE INDEX meter_ownerships_meter ON meter_ownerships (meter_id, released_at);

-- Backfill: the current owners (earlier, released periods were not recorded before this migration).
INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at)
SELECT id, owner_id, coalesce(claimed_at, now()) FROM meters WHERE owner_id IS NOT NULL;

COMMENT ON COLUMN energy_windows.owner_id IS 'owner holding the meter at the window end (central/accounting/ownership.py)';
