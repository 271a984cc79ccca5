-- Standing orders (central/market/standing.py): a user's instruction placed as a real order every epoch, and one
-- run row per (standing order, epoch): the claim that makes placing idempotent, the day's usage, and the reason a
-- run was skipped (shown to the user).
CREATE TABLE standing_orders (
    id              bigserial PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users(id),
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    price           bigint NOT NULL CHECK (price > 0),          -- quote base units per kWh
    max_qty_wh      bigint CHECK (max_qty_wh > 0),              -- per epoch
    daily_energy_wh bigint CHECK (daily_energy_wh > 0),         -- per UTC day, placed
    daily_spend     bigint CHECK (daily_spend > 0),             -- per UTC day, quote locked (buy only)
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'deleted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (side = 'buy' OR daily_spend IS NULL)
);
CREATE INDEX standing_orders_user ON standing_orders (user_id, id) WHERE status <> 'deleted';
CREATE INDEX standing_orders_active ON standing_orders (id) WHERE status = 'active';

CREATE TABLE standing_runs (
    standing_id bigint NOT NULL REFERENCES standing_orders(id),
    epoch_start timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('placing', 'placed', 'skipped')),
    reason      text,
    order_id    bigint REFERENCES orders(id),
    qty         bigint NOT NULL DEFAULT 0 CHECK (qty >= 0),
    lock        bigint NOT NULL DEFAULT 0 CHECK (lock >= 0),
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (standing_id, epoch_start),
    CHECK (outcome <> 'placed' OR order_id IS NOT NULL),
    CHECK (outcome <> 'skipped' OR (reason IS NOT NULL AND qty = 0 AND lock = 0))
);
