-- The gateway's health from its retained status message (protocol/status.py): unacknowledged outbox depth and the
-- age of its oldest record, meters down, alarm keys. NULL when the gateway has not reported it (older firmware).
ALTER TABLE devices
    ADD COLUMN outbox_depth bigint,
    ADD COLUMN outbox_oldest_age_s bigint,
    ADD COLUMN meters_down integer,
    ADD COLUMN alarms text[] NOT NULL DEFAULT '{}';
