-- issue 10 D9: self-service registrations are rate-limited per source address and per e-mail address.
CREATE TABLE IF NOT EXISTS registration_attempts (
    id      bigserial PRIMARY KEY,
    email   text NOT NULL,
    address text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS registration_attempts_email ON registration_attempts (email, at);
CREATE INDEX IF NOT EXISTS registration_attempts_address ON registration_attempts (address, at);
