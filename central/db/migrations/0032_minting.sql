-- Minting (DESIGN D7): a durable outbox of mint intents, one per (meter, window) with exported energy.
--
-- intent: pending (no wallet yet = accrued) -> submitted (in a transaction whose signature and last valid block
-- height are recorded BEFORE it is sent) -> confirmed | back to pending (the transaction landed with an error or
-- expired without landing; it can never land afterwards) -> failed after too many attempts (admin retry).

CREATE TABLE mint_txs (
    id                      bigserial PRIMARY KEY,
    signature               text UNIQUE NOT NULL,
    last_valid_block_height bigint NOT NULL,
    raw                     bytea NOT NULL,        -- the signed transaction, re-broadcast while it can still land
    memo                    text NOT NULL,
    root                    bytea NOT NULL CHECK (length(root) = 32),
    state                   text NOT NULL DEFAULT 'submitted'
                            CHECK (state IN ('submitted', 'confirmed', 'failed', 'expired')),
    err                     text,
    slot                    bigint,
    created_at              timestamptz NOT NULL DEFAULT now(),
    settled_at              timestamptz
);
CREATE INDEX mint_txs_open ON mint_txs (id) WHERE state = 'submitted';

CREATE TABLE mint_intents (
    id              bigserial PRIMARY KEY,
    meter_id        uuid NOT NULL,
    window_start_ms bigint NOT NULL,
    window_end_ms   bigint NOT NULL,
    owner_id        uuid NOT NULL REFERENCES users(id),
    amount_wh       bigint NOT NULL CHECK (amount_wh > 0),
    window_root     bytea NOT NULL CHECK (length(window_root) = 32),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'submitted', 'confirmed', 'failed')),
    wallet          text,                       -- destination, fixed when submitted
    tx_id           bigint REFERENCES mint_txs(id),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meter_id, window_start_ms),
    FOREIGN KEY (meter_id, window_start_ms) REFERENCES energy_windows (meter_id, window_start_ms)
);
CREATE INDEX mint_intents_pending ON mint_intents (owner_id, window_start_ms) WHERE state = 'pending';
CREATE INDEX mint_intents_tx ON mint_intents (tx_id);
CREATE INDEX mint_intents_owner ON mint_intents (owner_id, window_start_ms);
