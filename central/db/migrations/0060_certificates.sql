-- Renewable energy certificates (DESIGN D9, issue 7): one Token-2022 mint per certificate, backed by final settlement
-- windows of verified export (energy_windows, 0031). See central/certificates/.

CREATE TABLE certificates (
    id                uuid PRIMARY KEY,
    mint              text UNIQUE NOT NULL,              -- create_with_seed(issuer, id.hex, Token-2022)
    meter_id          uuid NOT NULL REFERENCES meters(id),
    meter_serial      text NOT NULL,
    owner_id          uuid NOT NULL REFERENCES users(id),  -- the meter's owner, to whom it was issued
    owner_wallet      text NOT NULL,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL CHECK (period_end > period_start),
    energy_wh         bigint NOT NULL CHECK (energy_wh > 0),
    energy_source     text NOT NULL,
    issuer            text NOT NULL,
    issued_at         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL CHECK (expires_at > issued_at),
    readings_root     bytea NOT NULL CHECK (length(readings_root) = 32),
    status            text NOT NULL CHECK (status IN ('issuing', 'active', 'revoked', 'expired')),
    retired_wh        bigint NOT NULL DEFAULT 0 CHECK (retired_wh >= 0 AND retired_wh <= energy_wh),
    issued_by         uuid REFERENCES users(id),
    revoked_at        timestamptz,
    revoked_by        uuid REFERENCES users(id),
    revocation_reason text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_owner ON certificates (owner_id);
CREATE INDEX certificates_meter ON certificates (meter_id, period_start);
CREATE INDEX certificates_expiry ON certificates (expires_at) WHERE status = 'active';

-- The windows backing each certificate. The primary key is the double-issuance guard: a (meter, window) backs at
-- most one certificate; of two concurrent issuing transactions the second waits on the first and then fails.
-- The foreign key admits only windows accounting has made final.
CREATE TABLE certificate_windows (
    meter_id        uuid NOT NULL,
    window_start_ms bigint NOT NULL,
    certificate_id  uuid NOT NULL REFERENCES certificates(id),
    export_wh       bigint NOT NULL CHECK (export_wh > 0),
    PRIMARY KEY (meter_id, window_start_ms),
    FOREIGN KEY (meter_id, window_start_ms) REFERENCES energy_windows (meter_id, window_start_ms)
);
CREATE INDEX certificate_windows_certificate ON certificate_windows (certificate_id);

-- Who holds how much, as the platform recorded it (issue, and transfers/retirements it co-signed). Every wallet
-- listed here had its token account thawed by the platform; validation compares these with the chain.
CREATE TABLE certificate_holdings (
    certificate_id uuid NOT NULL REFERENCES certificates(id),
    wallet         text NOT NULL,
    user_id        uuid REFERENCES users(id),
    amount_wh      bigint NOT NULL CHECK (amount_wh >= 0),
    PRIMARY KEY (certificate_id, wallet)
);
CREATE INDEX certificate_holdings_user ON certificate_holdings (user_id) WHERE amount_wh > 0;

-- Transactions built for a holder's wallet to sign (transaction-request pattern). Completed retirement requests are
-- the retirement register (beneficiary, purpose, consumption period, transaction signature).
CREATE TABLE certificate_requests (
    id                      uuid PRIMARY KEY,
    certificate_id          uuid NOT NULL REFERENCES certificates(id),
    user_id                 uuid NOT NULL REFERENCES users(id),
    kind                    text NOT NULL CHECK (kind IN ('transfer', 'retire')),
    wallet                  text NOT NULL,
    amount_wh               bigint NOT NULL CHECK (amount_wh > 0),
    message                 bytea NOT NULL,
    last_valid_block_height bigint NOT NULL,
    created_at              timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL,
    to_wallet               text,
    to_user_id              uuid REFERENCES users(id),
    beneficiary             text,
    purpose                 text,
    consumption_start       timestamptz,
    consumption_end         timestamptz,
    signature               text UNIQUE,
    completed_at            timestamptz,
    CHECK ((kind = 'transfer') = (to_wallet IS NOT NULL)),
    CHECK ((kind = 'retire') = (beneficiary IS NOT NULL AND purpose IS NOT NULL
                                AND consumption_start IS NOT NULL AND consumption_end IS NOT NULL)),
    CHECK ((signature IS NULL) = (completed_at IS NULL))
);
CREATE INDEX certificate_requests_certificate ON certificate_requests (certificate_id, completed_at);
