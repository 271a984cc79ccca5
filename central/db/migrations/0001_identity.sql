-- Identity: users, sessions, devices (gateways), meters, device challenges, audit trails.
-- Other subsystems code against users / devices / meters exactly as below (columns may be added, never renamed).

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text UNIQUE NOT NULL CHECK (email = lower(email)),
    password_hash     text NOT NULL,
    role              text NOT NULL CHECK (role IN ('consumer', 'prosumer', 'installer', 'rec_authority', 'admin')),
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    disabled_at       timestamptz
);

-- Rotating refresh tokens, stored as SHA-256 of the random token. A family is one login; reusing a rotated
-- (revoked) token revokes its whole family.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Single-use e-mailed tokens (verification, password reset), stored as SHA-256.
CREATE TABLE email_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);

-- Login attempts, for rate limiting per account and per client address (and for audit).
CREATE TABLE login_attempts (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL,
    address    text NOT NULL,
    success    boolean NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email ON login_attempts (email, at);
CREATE INDEX login_attempts_address ON login_attempts (address, at);

CREATE TABLE devices (
    device_id    text PRIMARY KEY,               -- base58 of the Ed25519 public key
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'suspended', 'revoked')),
    installer_id uuid REFERENCES users(id),
    site_label   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    verified_at  timestamptz,
    online       boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz
);
CREATE INDEX devices_installer ON devices (installer_id);

CREATE TABLE meters (
    id             uuid PRIMARY KEY,
    serial         text UNIQUE NOT NULL,
    device_id      text NOT NULL REFERENCES devices(device_id),
    model          text NOT NULL,
    protocol       text NOT NULL,
    source         text,                         -- renewable source ('solar', 'wind', ...) or NULL
    meter_key_hash text NOT NULL,                -- bcrypt, cost 12
    owner_id       uuid REFERENCES users(id),
    claimed_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meters_device ON meters (device_id);
CREATE INDEX meters_owner ON meters (owner_id);

-- Device key-possession challenges (protocol 3.3): random 32-byte nonces, single use, short expiry.
CREATE TABLE device_challenges (
    nonce      bytea PRIMARY KEY CHECK (length(nonce) = 32),
    device_id  text NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
    channel    text NOT NULL CHECK (channel IN ('mqtt', 'http')),
    expires_ms bigint NOT NULL,                  -- exactly the value the device signs (protocol 3.3)
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX device_challenges_device ON device_challenges (device_id);
CREATE INDEX device_challenges_expiry ON device_challenges (expires_at);

-- Every meter-claim attempt (DESIGN D6).
CREATE TABLE meter_claim_attempts (
    id         bigserial PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users(id),
    serial     text NOT NULL,
    address    text NOT NULL,
    user_agent text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('claimed', 'already_owned', 'wrong_key', 'claimed_by_other',
                                                'rate_limited')),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meter_claim_attempts_user ON meter_claim_attempts (user_id, at);

-- Device status changes made by people (verify, suspend, revoke, reinstate), for audit.
CREATE TABLE device_events (
    id         bigserial PRIMARY KEY,
    device_id  text NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
    actor_id   uuid REFERENCES users(id),
    event      text NOT NULL,
    detail     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_events_device ON device_events (device_id, at);
