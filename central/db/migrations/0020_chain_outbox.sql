-- Durable chain outbox (ledger): intents to change the chain, and the transactions submitted for them.
-- An intent is pending -> submitted (signature, last valid block height) -> confirmed | failed. It is linked to at
-- most one live submission; it goes back to pending only once that transaction can no longer land (the chain is
-- past its last valid block height and the signature is unknown) or landed with an error (nothing applied).

CREATE TABLE chain_submission (
    id                      bigserial PRIMARY KEY,
    kind                    text        NOT NULL,
    signature               text        NOT NULL UNIQUE,
    last_valid_block_height bigint      NOT NULL,
    raw_tx                  bytea       NOT NULL,
    intent_count            integer     NOT NULL,
    state                   text        NOT NULL DEFAULT 'submitted'
                            CHECK (state IN ('submitted', 'confirmed', 'failed', 'expired')),
    slot                    bigint,
    error                   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX chain_submission_open ON chain_submission (kind, id) WHERE state = 'submitted';

CREATE TABLE chain_intent (
    id             bigserial PRIMARY KEY,
    kind           text        NOT NULL,
    key            text        NOT NULL,
    payload        jsonb       NOT NULL,
    state          text        NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'submitted', 'confirmed', 'failed')),
    submission_id  bigint      REFERENCES chain_submission (id),
    signature      text,
    last_valid_block_height bigint,
    attempts       integer     NOT NULL DEFAULT 0,
    solo           boolean     NOT NULL DEFAULT false,
    not_before     timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    confirmed_at   timestamptz,
    UNIQUE (kind, key),
    CHECK (state <> 'submitted' OR submission_id IS NOT NULL)
);

CREATE INDEX chain_intent_pending ON chain_intent (kind, id) WHERE state = 'pending';
CREATE INDEX chain_intent_submission ON chain_intent (submission_id) WHERE submission_id IS NOT NULL;
