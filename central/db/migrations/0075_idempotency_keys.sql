-- Idempotency keys for state-changing HTTP requests (issue 10 D18; central/http/idempotency.py): a client that retries
-- with the same ``Idempotency-Key`` gets the first response replayed instead of a second order, cancel or transfer.
-- Kept in PostgreSQL so that every worker and every instance sees the same keys.

CREATE TABLE idempotency_keys (
    user_id       uuid NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- sha256 of method, path and request body: the same key with another request is refused (422).
    fingerprint   bytea NOT NULL CHECK (length(fingerprint) = 32),
    -- 'pending' while the first request runs (a concurrent retry gets 409), 'done' once its response is stored.
    state         text NOT NULL CHECK (state IN ('pending', 'done')),
    status        integer,
    content_type  text,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, key),
    CHECK (state = 'pending' OR status IS NOT NULL)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
