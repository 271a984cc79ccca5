-- Issue 16, grid zones (docs/decisions/0017-zonal-clearing.md). A zonal trade: ``qty`` is what the seller sends,
-- ``delivered`` what the buyer receives (the difference, the loss, goes to the grid operator), ``zone`` the market
-- (zone index in the epoch's zone parameters) that cleared it, the grid fees each side pays and the grid operator's
-- wallet that receives fees and loss. Plain (single-zone) trades keep the defaults.
ALTER TABLE trades
    ADD COLUMN zone            integer NOT NULL DEFAULT 0,
    ADD COLUMN delivered       bigint,
    ADD COLUMN grid_fee_seller bigint NOT NULL DEFAULT 0 CHECK (grid_fee_seller >= 0),
    ADD COLUMN grid_fee_buyer  bigint NOT NULL DEFAULT 0 CHECK (grid_fee_buyer >= 0),
    ADD COLUMN grid_operator   text,
    ADD CONSTRAINT trades_delivered CHECK (delivered IS NULL OR (delivered >= 0 AND delivered <= qty)),
    ADD CONSTRAINT trades_seller_share CHECK (fee + grid_fee_seller <= value);

-- The published order set: each order's zone; the epoch's zone parameters (``ZoneParams.encode()``, NULL = a
-- single-zone epoch) make the set recomputable with ``central.market.zonal``.
ALTER TABLE epoch_orders ADD COLUMN zone integer NOT NULL DEFAULT 0;
ALTER TABLE epochs ADD COLUMN zone_params bytea;

-- Each zone's market in a zonal epoch.
CREATE TABLE epoch_zones (
    epoch_start    timestamptz NOT NULL REFERENCES epochs(start_at),
    zone           integer NOT NULL,
    name           text NOT NULL,
    price          bigint,                        -- NULL: the zone's market did not cross
    volume         bigint NOT NULL,               -- Wh traded in the zone's market (at its level)
    grid_fees      bigint NOT NULL,
    losses         bigint NOT NULL,
    utility_bought bigint NOT NULL DEFAULT 0,     -- Wh its meters bought from the utility
    utility_sold   bigint NOT NULL DEFAULT 0,     -- Wh its meters sold to the utility
    PRIMARY KEY (epoch_start, zone)
);

-- The utility trades without orders (docs/decisions/0017-zonal-clearing.md): its side of a utility trade has none.
ALTER TABLE trades ALTER COLUMN buy_order DROP NOT NULL, ALTER COLUMN sell_order DROP NOT NULL,
    ADD CONSTRAINT trades_one_order CHECK (buy_order IS NOT NULL OR sell_order IS NOT NULL);
