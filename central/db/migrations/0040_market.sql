-- Market (issue 6, DESIGN D3/D8): market accounts, escrow balances, epochs, orders, cleared order sets, trades,
-- escrow deposits/withdrawals. Energy in Wh, money in quote base units, prices in quote base units per kWh.

-- A user's public market number: the clearing engine's "user" and part of the escrow account seeds.
CREATE TABLE market_accounts (
    account    bigserial PRIMARY KEY,
    user_id    uuid UNIQUE NOT NULL REFERENCES users(id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Database view of each escrow token account: on-chain balance = available + locked (the reconciled invariant).
CREATE TABLE escrow_balances (
    account    bigint NOT NULL REFERENCES market_accounts(account),
    asset      text NOT NULL CHECK (asset IN ('energy', 'quote')),
    address    text UNIQUE NOT NULL,             -- create_with_seed address (base = escrow authority)
    opened     boolean NOT NULL DEFAULT false,   -- the token account exists on chain
    available  bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    locked     bigint NOT NULL DEFAULT 0 CHECK (locked >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, asset)
);

CREATE TABLE epochs (
    start_at       timestamptz PRIMARY KEY,
    end_at         timestamptz NOT NULL CHECK (end_at > start_at),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'cleared', 'settled')),
    fee_bps        integer,
    price          bigint,                       -- NULL when nothing crossed
    marginal_bid   bigint,
    marginal_ask   bigint,
    curve_volume   bigint NOT NULL DEFAULT 0,    -- Wh crossed on the aggregate curve
    volume         bigint NOT NULL DEFAULT 0,    -- Wh traded (after self-trade netting)
    order_count    integer NOT NULL DEFAULT 0,
    trade_count    integer NOT NULL DEFAULT 0,
    order_set_hash bytea,                        -- SHA-256 of the canonical order set (central/market/clearing.py)
    closed_at      timestamptz,
    cleared_at     timestamptz,
    settled_at     timestamptz
);
CREATE INDEX epochs_status ON epochs (status, start_at);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,           -- also the time priority
    account     bigint NOT NULL REFERENCES market_accounts(account),
    side        text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty         bigint NOT NULL CHECK (qty > 0),
    price       bigint NOT NULL CHECK (price > 0),
    filled      bigint NOT NULL DEFAULT 0 CHECK (filled >= 0 AND filled <= qty),
    tif         text NOT NULL CHECK (tif IN ('epoch', 'gtc')),
    expires_at  timestamptz,                     -- GTC only: takes part in epochs that close no later than this
    epoch_start timestamptz NOT NULL REFERENCES epochs(start_at),  -- the epoch it takes part in (next)
    locked      bigint NOT NULL CHECK (locked >= 0),  -- escrow this order still holds (Wh or quote units)
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'filled', 'cancelled', 'expired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_open_by_epoch ON orders (epoch_start, side, price) WHERE status = 'open';
CREATE INDEX orders_by_account ON orders (account, id DESC);

-- The exact order set each epoch cleared (remaining quantities at the close), so anyone can recompute the hash.
CREATE TABLE epoch_orders (
    epoch_start timestamptz NOT NULL REFERENCES epochs(start_at),
    order_id    bigint NOT NULL REFERENCES orders(id),
    account     bigint NOT NULL,
    side        smallint NOT NULL,               -- 0 buy, 1 sell (the engine's encoding)
    qty         bigint NOT NULL,
    price       bigint NOT NULL,
    filled      bigint NOT NULL,
    netted      bigint NOT NULL,
    PRIMARY KEY (epoch_start, order_id)
);

-- Settlement transactions (many trades each, never a trade split): recorded with their signature BEFORE being sent,
-- so after any crash each is decided by its on-chain status or its blockhash expiry (exactly-once settlement).
CREATE TABLE settlement_batches (
    id                      bigserial PRIMARY KEY,
    signature               text UNIQUE NOT NULL,
    last_valid_block_height bigint NOT NULL,
    status                  text NOT NULL DEFAULT 'submitted'
                            CHECK (status IN ('submitted', 'confirmed', 'failed', 'expired')),
    trade_count             integer NOT NULL,
    error                   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz
);
CREATE INDEX settlement_batches_open ON settlement_batches (id) WHERE status = 'submitted';

CREATE TABLE trades (
    id            bigserial PRIMARY KEY,
    epoch_start   timestamptz NOT NULL REFERENCES epochs(start_at),
    seq           integer NOT NULL,
    buy_order     bigint NOT NULL REFERENCES orders(id),
    sell_order    bigint NOT NULL REFERENCES orders(id),
    buyer         bigint NOT NULL REFERENCES market_accounts(account),
    seller        bigint NOT NULL REFERENCES market_accounts(account),
    buyer_wallet  text NOT NULL,                 -- destinations fixed at clearing, so every retry is identical
    seller_wallet text NOT NULL,
    qty           bigint NOT NULL CHECK (qty > 0),
    price         bigint NOT NULL,
    value         bigint NOT NULL CHECK (value >= 0),
    fee           bigint NOT NULL CHECK (fee >= 0 AND fee <= value),
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'settled')),
    batch_id      bigint REFERENCES settlement_batches(id),  -- the batch currently carrying it (NULL: none)
    attempts      integer NOT NULL DEFAULT 0,
    signature     text,                          -- of the transaction that settled it
    settled_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (epoch_start, seq),
    CHECK (buyer <> seller)
);
CREATE INDEX trades_pending ON trades (id) WHERE status = 'pending';
CREATE INDEX trades_batch ON trades (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX trades_recent ON trades (settled_at DESC) WHERE status = 'settled';
CREATE INDEX trades_buyer ON trades (buyer, id DESC);
CREATE INDEX trades_seller ON trades (seller, id DESC);

-- Deposits (transaction requests signed by the user's wallet) and withdrawals (signed by the platform).
CREATE TABLE escrow_transfers (
    id            uuid PRIMARY KEY,
    account       bigint NOT NULL REFERENCES market_accounts(account),
    asset         text NOT NULL CHECK (asset IN ('energy', 'quote')),
    kind          text NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    amount        bigint NOT NULL CHECK (amount > 0),
    wallet        text NOT NULL,
    message       bytea NOT NULL,                -- the exact v0 message built (deposits: what the user must sign)
    last_valid_block_height bigint NOT NULL,
    status        text NOT NULL CHECK (status IN ('built', 'submitted', 'confirmed', 'failed', 'expired')),
    signature     text,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    submitted_at  timestamptz,
    finished_at   timestamptz
);
CREATE INDEX escrow_transfers_open ON escrow_transfers (status) WHERE status IN ('built', 'submitted');
CREATE INDEX escrow_transfers_account ON escrow_transfers (account, created_at DESC);
