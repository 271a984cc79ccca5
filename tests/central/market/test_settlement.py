"""Settlement on the embedded ledger: batching, rationing and self-trade on chain, fees to the base unit, crashes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.signature import Signature

from central.ledger.tokens import MEMO_PROGRAM_ID, TOKEN_PROGRAM_ID
from central.market.escrow_seeds import Asset
from central.market.reconcile import reconcile
from central.market.settler import Settler
from central.market.tables import LookupTables
from tests.central.market.market_fixtures import Market, make_market


class CrashError(Exception):
    pass


@pytest.fixture
async def market(pool: asyncpg.Pool) -> AsyncIterator[Market]:
    async for m in make_market(pool, fee_bps=137):
        yield m


async def invariant(m: Market) -> None:
    report = await reconcile(m.pool, m.platform)
    assert report.mismatches == []


async def funded_trader(m: Market, *, energy: int = 0, quote: int = 0) -> tuple[uuid.UUID, Keypair]:
    uid, wallet = await m.trader(energy=energy, quote=quote)
    if energy:
        assert await m.deposit(uid, wallet, "energy", energy) == "confirmed"
    if quote:
        assert await m.deposit(uid, wallet, "quote", quote) == "confirmed"
    return uid, wallet


async def test_many_trades_batched_rationed_fees_exact(market: Market) -> None:
    m = market
    sellers = [await funded_trader(m, energy=5000) for _ in range(12)]
    buyers = [await funded_trader(m, quote=10_000_000) for _ in range(12)]
    for i, (uid, _) in enumerate(sellers):
        await m.book.place(uid, "sell", 1000 + 7 * i, 1000 + i)
    for i, (uid, _) in enumerate(buyers):
        await m.book.place(uid, "buy", 1500 + 11 * i, 1011)  # equal limits: time decides
    m.clock.advance(60)
    [epoch] = await m.book.clear_due()
    trades = await m.pool.fetch("SELECT * FROM trades ORDER BY seq")
    assert epoch.trade_count == len(trades) > 12
    settler = Settler(m.pool, m.platform)
    assert await settler.settle_all() == len(trades)
    await invariant(m)
    batches = await m.pool.fetch("SELECT * FROM chain_submission WHERE kind = 'market.settlement'")
    assert all(b["state"] == "confirmed" for b in batches)
    assert len(batches) < len(trades)  # several trades per transaction
    # Each trade appears in exactly one transaction (its memo), and that transaction carries all three transfers.
    seen: dict[int, int] = {}
    for b in batches:
        rec = await m.ledger.get_transaction(Signature.from_string(b["signature"]))
        assert rec is not None
        msg = rec.transaction.message
        keys = list(msg.account_keys)
        programs = [keys[ix.program_id_index] for ix in msg.instructions]
        memos = [
            bytes(ix.data).decode()
            for ix, prog in zip(msg.instructions, programs, strict=True)
            if prog == MEMO_PROGRAM_ID
        ]
        assert programs.count(TOKEN_PROGRAM_ID) >= 2 * len(memos)  # transfers travel with their memo
        for text in memos:
            tid = int(text.removeprefix("gtx:t:"))
            seen[tid] = seen.get(tid, 0) + 1
    assert seen == {t["id"]: 1 for t in trades}
    # Fee arithmetic to the base unit, on chain: treasury = sum of floor(floor(q * p / 1000) * 137 / 10000).
    p = epoch.price
    assert p is not None
    assert all(t["value"] == t["qty"] * p // 1000 and t["fee"] == t["value"] * 137 // 10_000 for t in trades)
    assert await m.token_balance(m.chain.treasury_ata) == sum(t["fee"] for t in trades)
    for uid, wallet in sellers:
        acc = await m.book.account_of(uid)
        got = sum(t["value"] - t["fee"] for t in trades if t["seller"] == acc)
        assert await m.wallet_balance(wallet, Asset.QUOTE) == got
    for uid, wallet in buyers:
        acc = await m.book.account_of(uid)
        assert await m.wallet_balance(wallet, Asset.ENERGY) == sum(t["qty"] for t in trades if t["buyer"] == acc)
    # Rationing at the margin: buyers all bid 1011, so they fill strictly in time order.
    fills = [
        await m.pool.fetchval(
            "SELECT filled FROM orders WHERE account = $1 AND side = 'buy'", await m.book.account_of(uid)
        )
        for uid, _ in buyers
    ]
    partial = [i for i, f in enumerate(fills) if 0 < f < 1500 + 11 * i]
    assert len(partial) <= 1
    first_unfilled = next((i for i, f in enumerate(fills) if f < 1500 + 11 * i), len(fills))
    assert all(f == 0 for f in fills[first_unfilled + 1 :])
    assert all(f == 1500 + 11 * i for i, f in enumerate(fills[:first_unfilled]))


async def test_no_self_trade_on_chain(market: Market) -> None:
    m = market
    both, wallet = await funded_trader(m, energy=5000, quote=10_000_000)
    other, o_wallet = await funded_trader(m, energy=5000)
    await m.book.place(both, "buy", 4000, 2000)
    await m.book.place(both, "sell", 3000, 500)
    await m.book.place(other, "sell", 2000, 900)
    m.clock.advance(60)
    [epoch] = await m.book.clear_due()
    trades = await m.pool.fetch("SELECT buyer, seller, qty FROM trades")
    assert all(t["buyer"] != t["seller"] for t in trades)
    assert epoch.volume == 1000  # user nets 3000 of its 4000 Wh bid against its own 3000 Wh ask
    await Settler(m.pool, m.platform).settle_all()
    await invariant(m)
    assert await m.wallet_balance(wallet, Asset.ENERGY) == 1000
    assert await m.wallet_balance(o_wallet, Asset.QUOTE) > 0


async def _one_trade(m: Market) -> tuple[Keypair, Keypair]:
    s, s_wallet = await funded_trader(m, energy=4000)
    b, b_wallet = await funded_trader(m, quote=1_000_000)
    await m.book.place(s, "sell", 4000, 1000)
    await m.book.place(b, "buy", 4000, 1000)
    m.clock.advance(60)
    await m.book.clear_due()
    return s_wallet, b_wallet


async def _settle_and_crash_at(m: Market, crash_point: str) -> None:
    """One settler pass that dies (like a killed process) at ``crash_point`` of the chain outbox."""

    def crash(point: str) -> None:
        if point == crash_point:
            raise CrashError

    with pytest.raises(CrashError):
        await Settler(m.pool, m.platform, hook=crash).settle_once()


async def test_crash_after_send_before_record_settles_exactly_once(market: Market) -> None:
    m = market
    s_wallet, b_wallet = await _one_trade(m)
    await _settle_and_crash_at(m, "after_send")
    assert await m.pool.fetchval("SELECT status FROM trades") == "pending"
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 4000  # landed on chain, not yet recorded
    assert (await reconcile(m.pool, m.platform)).pending == 2  # the seller's energy and buyer's quote are in flight
    # A fresh settler (after the "restart") records it; nothing is sent twice.
    assert await Settler(m.pool, m.platform).settle_all() == 1
    assert await m.pool.fetchval("SELECT count(*) FROM chain_submission") == 1
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 4000
    assert await m.wallet_balance(s_wallet, Asset.QUOTE) == 4000 - 4000 * 137 // 10_000
    await invariant(m)


async def test_crash_after_record_before_send_lands_once(market: Market) -> None:
    m = market
    _, b_wallet = await _one_trade(m)

    await _settle_and_crash_at(m, "before_send")
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 0  # recorded, never sent
    # Restarted: the recorded transaction is still valid, so the same bytes are re-broadcast (never a new one).
    assert await Settler(m.pool, m.platform, rebroadcast_after=0.0).settle_all() == 1
    assert [r["state"] for r in await m.pool.fetch("SELECT state FROM chain_submission")] == ["confirmed"]
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 4000
    await invariant(m)


async def test_crash_after_record_then_expiry_rebuilds_once(market: Market) -> None:
    m = market
    _, b_wallet = await _one_trade(m)

    await _settle_and_crash_at(m, "before_send")
    m.ledger.advance_slots(200)  # the recorded transaction can no longer land
    assert await Settler(m.pool, m.platform).settle_all() == 1
    states = [r["state"] for r in await m.pool.fetch("SELECT state FROM chain_submission ORDER BY id")]
    assert states == ["expired", "confirmed"]
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 4000
    await invariant(m)


async def test_a_failing_trade_does_not_block_the_others(market: Market) -> None:
    m = market
    sellers = [await funded_trader(m, energy=2000) for _ in range(3)]
    buyer, b_wallet = await funded_trader(m, quote=10_000_000)
    for uid, _ in sellers:
        await m.book.place(uid, "sell", 2000, 1000)
    await m.book.place(buyer, "buy", 6000, 1000)
    m.clock.advance(60)
    await m.book.clear_due()
    # Break one trade on chain: its seller's escrow loses the energy behind the database's back.
    bad = await m.pool.fetchrow("SELECT id, seller FROM trades ORDER BY seq LIMIT 1")
    await m.pool.execute(
        "UPDATE chain_intent SET payload = jsonb_set(payload, '{qty}', '999999') WHERE key = $1", f"trade:{bad['id']}"
    )
    assert await Settler(m.pool, m.platform).settle_all() == 2
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 4000
    states = dict(await m.pool.fetch("SELECT key, state FROM chain_intent"))
    assert states.pop(f"trade:{bad['id']}") == "failed"
    assert set(states.values()) == {"confirmed"}
    assert await m.pool.fetchval("SELECT status FROM trades WHERE id = $1", bad["id"]) == "pending"
    await invariant(m)  # nothing moved for the failed trade: its locks still match the chain


async def test_lookup_tables_pack_more_trades_per_transaction(pool: asyncpg.Pool) -> None:
    async for m in make_market(pool, slot_ms=10):  # tables need slots to pass (entries activate a slot later)
        sellers = [await funded_trader(m, energy=3000) for _ in range(10)]
        buyers = [await funded_trader(m, quote=10_000_000) for _ in range(10)]
        for uid, _ in sellers:
            await m.book.place(uid, "sell", 3000, 900)
        for uid, _ in buyers:
            await m.book.place(uid, "buy", 3000, 1100)
        m.clock.advance(60)
        [epoch] = await m.book.clear_due()
        tables = LookupTables(m.pool, m.platform)
        assert await Settler(m.pool, m.platform, tables=tables).settle_all() == epoch.trade_count == 10
        subs = await m.pool.fetch("SELECT signature FROM chain_submission WHERE state = 'confirmed'")
        assert len(subs) == 1  # ten trades (30 transfers + 10 memos) in one 1232-byte transaction
        rec = await m.ledger.get_transaction(Signature.from_string(subs[0]["signature"]))
        assert rec is not None
        msg = rec.transaction.message
        assert isinstance(msg, MessageV0)
        assert msg.address_table_lookups
        assert await m.pool.fetchval("SELECT count(*) FROM market_lookup_tables") == 1
        # A second settler (another worker) reuses the recorded table.
        again = LookupTables(m.pool, m.platform)
        assert [t.key for t in await again.cover(tables.statics())] == [
            t.key for t in await tables.cover(tables.statics())
        ]
        await invariant(m)
