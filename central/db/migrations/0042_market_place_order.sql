-- Placing an order in one round trip (issue 6 target: >= 1,500 orders/s). Same steps and locks as before, now inside
-- one VOLATILE function so each step gets a fresh snapshot (READ COMMITTED) after the epoch's shared advisory lock:
-- an epoch close that committed while we waited for the lock is seen, so an order is either in the book the clearer
-- reads or refused ('closed'), never lost. Outcomes: placed | no_wallet | no_account | closed | insufficient.
CREATE FUNCTION market_place_order(
    p_user uuid, p_side text, p_qty bigint, p_price bigint, p_tif text, p_expires timestamptz,
    p_epoch_start timestamptz, p_epoch_end timestamptz, p_lock bigint, p_asset text,
    p_lock_class integer, p_lock_key integer
) RETURNS TABLE (
    outcome text, id bigint, side text, qty bigint, price bigint, filled bigint, tif text, expires_at timestamptz,
    epoch_start timestamptz, locked bigint, status text, created_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    acc bigint;
    st text;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock_class, p_lock_key);
    IF NOT EXISTS (SELECT 1 FROM wallets w WHERE w.user_id = p_user) THEN
        outcome := 'no_wallet';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT a.account INTO acc FROM market_accounts a WHERE a.user_id = p_user;
    IF acc IS NULL THEN
        outcome := 'no_account';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT e.status INTO st FROM epochs e WHERE e.start_at = p_epoch_start;
    IF st IS NULL THEN  -- the epoch's first order creates its row
        INSERT INTO epochs (start_at, end_at) VALUES (p_epoch_start, p_epoch_end) ON CONFLICT DO NOTHING;
        SELECT e.status INTO st FROM epochs e WHERE e.start_at = p_epoch_start;
    END IF;
    IF st <> 'open' THEN
        outcome := 'closed';
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE escrow_balances b SET available = b.available - p_lock, locked = b.locked + p_lock, updated_at = now()
     WHERE b.account = acc AND b.asset = p_asset AND b.available >= p_lock;
    IF NOT FOUND THEN
        outcome := 'insufficient';
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO orders AS o (account, side, qty, price, tif, expires_at, epoch_start, locked)
    VALUES (acc, p_side, p_qty, p_price, p_tif, p_expires, p_epoch_start, p_lock)
    RETURNING o.id, o.side, o.qty, o.price, o.filled, o.tif, o.expires_at, o.epoch_start, o.locked, o.status,
              o.created_at
    INTO id, side, qty, price, filled, tif, expires_at, epoch_start, locked, status, created_at;
    outcome := 'placed';
    PERFORM pg_notify('gtx_market', json_build_object('type', 'order', 'account', acc, 'order', json_build_object(
        'id', id, 'side', side, 'qty', qty, 'price', price, 'filled', filled, 'status', status,
        'epoch_start', epoch_start))::text);
    RETURN NEXT;
END
$$;

-- Many orders of one epoch in one statement (one round trip, one commit): what a worker's concurrent placements are
-- coalesced into. The escrow rows of the batch are row-locked first, in key order, as the clearer and settlement
-- lock them, so batches never deadlock with each other or with them; then each order is placed as above (its own
-- fresh snapshots after the epoch lock). Row ``n`` answers the n-th (1-based) order.
CREATE FUNCTION market_place_orders(
    p_user uuid[], p_side text[], p_qty bigint[], p_price bigint[], p_tif text[], p_expires timestamptz[],
    p_epoch_start timestamptz, p_epoch_end timestamptz, p_lock bigint[], p_asset text[],
    p_lock_class integer, p_lock_key integer
) RETURNS TABLE (
    n integer, outcome text, id bigint, side text, qty bigint, price bigint, filled bigint, tif text,
    expires_at timestamptz, epoch_start timestamptz, locked bigint, status text, created_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock_class, p_lock_key);
    PERFORM 1 FROM escrow_balances b
      JOIN market_accounts a ON a.account = b.account
      JOIN unnest(p_user, p_asset) AS u(user_id, asset) ON u.user_id = a.user_id AND u.asset = b.asset
     ORDER BY b.account, b.asset
       FOR UPDATE OF b;
    FOR i IN 1 .. cardinality(p_user) LOOP
        RETURN QUERY SELECT i, r.* FROM market_place_order(
            p_user[i], p_side[i], p_qty[i], p_price[i], p_tif[i], p_expires[i], p_epoch_start, p_epoch_end,
            p_lock[i], p_asset[i], p_lock_class, p_lock_key) AS r;
    END LOOP;
END
$$;
