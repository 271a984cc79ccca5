-- issue 10 D16: the per-serial meter-claim limit counts recent wrong-key attempts by serial
CREATE INDEX IF NOT EXISTS meter_claim_attempts_serial_at ON meter_claim_attempts (serial, at);
