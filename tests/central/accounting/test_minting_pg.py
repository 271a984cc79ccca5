"""End to end on real PostgreSQL and the embedded (LiteSVM) ledger: protocol-signed readings -> verified ingest ->
accounting windows -> mint -> owner's on-chain energy balance equals the Wh in the database."""

from __future__ import annotations

import asyncpg
from solders.signature import Signature

from central.accounting.mint_memo import MintLeaf, mints_root, parse_mint_memo
from central.ledger.platform import Platform
from central.minting.queries import mints_of
from central.minting.service import mint_outbox, release_accrued
from tests.central.accounting.acct_mint_env import (
    T0,
    W,
    account_all,
    add_user,
    energy_balance,
    energy_supply,
    feed,
    link_wallet,
    minted_wh_in_db,
    seed_site,
)


async def test_end_to_end_balance_equals_database_and_accrual(pool: asyncpg.Pool, chain: Platform) -> None:
    alice, bob = await add_user(pool), await add_user(pool)
    site = await seed_site(pool, [alice, alice, bob], ["A-1", "A-2", "B-1"])
    rate = {"A-1": 111, "A-2": 5, "B-1": 40}
    await feed(pool, site, T0, 13, rate)  # 0..60 min: 4 final windows per meter
    assert await account_all(pool) == 12
    alice_wallet = await link_wallet(pool, alice)

    outbox = mint_outbox(pool, chain)
    totals = await outbox.drain()
    assert totals.confirmed == 8  # alice's two meters x 4 windows; bob has no wallet yet: accrued
    assert totals.deferred == 4

    bob_mints = await mints_of(pool, bob)
    assert [m.status for m in bob_mints] == ["accrued"] * 4
    assert await energy_balance(chain, alice_wallet.device_id) == await minted_wh_in_db(pool, alice)
    assert await minted_wh_in_db(pool, alice) == (111 + 5) * 12

    # more readings arrive (late, in one batch); bob links his wallet; everything accrued is minted to it
    await feed(pool, site, T0 + 13 * 5 * 60_000, 6, rate)
    assert await account_all(pool) == 6
    bob_wallet = await link_wallet(pool, bob)
    assert await release_accrued(pool, bob) == 4
    await outbox.drain()
    assert await energy_balance(chain, bob_wallet.device_id) == await minted_wh_in_db(pool, bob) == 40 * 18
    assert await energy_balance(chain, alice_wallet.device_id) == await minted_wh_in_db(pool, alice) == 116 * 18
    assert await energy_supply(chain) == await minted_wh_in_db(pool)

    # docs/decisions/0007-exact-energy-accounting.md invariant per meter: Σ minted Wh = export(last final boundary) -
    # export(first reading); here the last boundary (T0 + 90 min) falls on a reading, so its register is a raw signed
    # value
    for serial, meter in site.meters.items():
        minted = await pool.fetchval(
            "SELECT sum((payload->>'wh')::bigint) FROM chain_intent WHERE payload->>'meter' = $1 "
            "AND state = 'confirmed'",
            str(meter),
        )
        boundary = await pool.fetchval("SELECT boundary_ms FROM accounting_checkpoints WHERE meter_id = $1", meter)
        at_boundary = await pool.fetchval(
            "SELECT export_wh FROM readings WHERE meter_id = $1 AND timestamp_ms = $2", meter, boundary
        )
        first = await pool.fetchval(
            "SELECT export_wh FROM readings WHERE meter_id = $1 ORDER BY timestamp_ms, seq LIMIT 1", meter
        )
        assert boundary == T0 + 6 * W
        assert minted == at_boundary - first == rate[serial] * 18

    # GET my mints data: window, Wh, signature, status
    mine = await mints_of(pool, alice)
    assert len(mine) == 12
    assert all(m.status == "confirmed" and m.signature for m in mine)

    # the memo on chain names the windows and carries the Merkle root of exactly the mints in that transaction
    sig = mine[0].signature
    assert sig is not None
    rec = await chain.ledger.get_transaction(Signature.from_string(sig))
    assert rec is not None
    assert rec.err is None
    memo_ix = rec.transaction.message.instructions[-1]
    parsed = parse_mint_memo(bytes(memo_ix.data).decode())
    rows = await pool.fetch(
        "SELECT e.meter_id, e.window_start_ms, e.window_end_ms, e.export_wh, e.merkle_root FROM chain_intent c "
        "JOIN energy_windows e ON c.key = e.meter_id::text || ':' || e.window_start_ms::text WHERE c.signature = $1",
        sig,
    )
    leaves = [MintLeaf(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]
    assert parsed.root == mints_root(leaves)
    assert parsed.count == len(rows)
    assert set(parsed.window_starts_s) == {r[1] // 1000 for r in rows}
