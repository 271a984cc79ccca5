-- Issue 10 D10: one outstanding MQTT challenge per device, issued no more often than identity.challenge_cooldown_s.
ALTER TABLE devices ADD COLUMN last_challenge_at timestamptz;
CREATE INDEX device_challenges_open ON device_challenges (device_id, channel) WHERE used_at IS NULL;
