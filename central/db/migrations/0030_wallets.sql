-- Wallet linking (protocol 3.6, DESIGN D6). A wallet is linked only by its own signature over a message naming the
-- user, the wallet, a single-use nonce and an expiry.

CREATE TABLE wallet_link_nonces (
    nonce      bytea PRIMARY KEY CHECK (length(nonce) = 16),
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    wallet     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX wallet_link_nonces_user ON wallet_link_nonces (user_id);

-- One wallet per user; a wallet belongs to at most one user.
CREATE TABLE wallets (
    user_id    uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    address    text UNIQUE NOT NULL,
    linked_at  timestamptz NOT NULL,
    link_nonce bytea NOT NULL REFERENCES wallet_link_nonces(nonce)
);

-- History of every link and re-link (audit).
CREATE TABLE wallet_links (
    id        bigserial PRIMARY KEY,
    user_id   uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address   text NOT NULL,
    nonce     bytea NOT NULL,
    linked_at timestamptz NOT NULL
);
