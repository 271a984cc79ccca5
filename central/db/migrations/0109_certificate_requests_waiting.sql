-- A user's certificate transfers and retirements waiting for the wallet's signature are counted before another is
-- built (at most 10, central/certificates/service.py MAX_WAITING_REQUESTS): an index over the unsigned ones only.
CREATE INDEX certificate_requests_waiting ON certificate_requests (user_id, expires_at) WHERE signature IS NULL;
