-- When a meter's owner last released it. A later owner sees readings only from then on: the previous owner's
-- consumption history is theirs, not the next occupant's.
ALTER TABLE meters ADD COLUMN released_at timestamptz;
