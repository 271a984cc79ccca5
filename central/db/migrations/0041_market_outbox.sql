-- Market settlement moves to the shared chain outbox (0020): one intent per trade, kind 'market.settlement',
-- key 'trade:<id>'. The market's own batch table and columns from 0040 are no longer used.
ALTER TABLE trades DROP COLUMN batch_id;
ALTER TABLE trades DROP COLUMN attempts;
DROP TABLE settlement_batches;

-- Address lookup tables the settler created (escrow accounts, wallet ATAs, mints, treasury), shared by workers.
CREATE TABLE market_lookup_tables (
    address    text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
