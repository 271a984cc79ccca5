"""Market settlement through RPC failover: two JSON-RPC front ends (processes) over the market's ledger, two settlers
(two workers) sending through ``FailoverLedger``; the first front end stops answering submissions after its first
(forwarding one, dropping the next) and is killed by its PID while it holds them. Every trade settles exactly once:
its memo is in exactly one landed transaction, wallets and treasury hold exactly what the trades say, and escrow on
chain equals available + locked."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from solders.signature import Signature

from central.ledger.failover import FailoverLedger
from central.ledger.jsonrpc import serve
from central.ledger.rpc import RpcLedger
from central.ledger.tokens import MEMO_PROGRAM_ID
from central.market.escrow_seeds import Asset
from central.market.reconcile import reconcile
from central.market.settler import Settler
from tests.central.ledger.proxies import Proxies, held_by
from tests.central.market.market_fixtures import Market, make_market


@pytest.fixture
async def market(pool: asyncpg.Pool) -> AsyncIterator[Market]:
    async for m in make_market(pool, slot_ms=10):
        yield m


@pytest.mark.slow
async def test_settlement_survives_a_provider_killed_mid_flight(market: Market, proxies: Proxies,
                                                                tmp_path: Path) -> None:
    m = market
    traders = []
    for i in range(16):
        uid, wallet = await m.trader(energy=5_000 if i % 2 == 0 else 0, quote=0 if i % 2 == 0 else 10_000_000)
        asset, amount = ("energy", 5_000) if i % 2 == 0 else ("quote", 10_000_000)
        assert await m.deposit(uid, wallet, asset, amount) == "confirmed"
        traders.append((uid, wallet))
    for i, (uid, _w) in enumerate(traders):
        if i % 2 == 0:
            await m.book.place(uid, "sell", 1_000 + 7 * i, 1_000 + i)
        else:
            await m.book.place(uid, "buy", 1_500 + 11 * i, 1_040)
    m.clock.advance(60)
    [epoch] = await m.book.clear_due()
    trades = await m.pool.fetch("SELECT * FROM trades ORDER BY seq")
    assert len(trades) >= 8

    server = await serve(m.ledger, "127.0.0.1", 0)
    log = tmp_path / "held.log"
    url_a, proc_a = proxies.start(server.url, "--hold-after", "1", "--log", str(log))
    url_b, _proc_b = proxies.start(server.url)
    failover = FailoverLedger([RpcLedger(url_a, timeout=30), RpcLedger(url_b, timeout=30)], retry_after_s=1.0)
    platform = dataclasses.replace(m.platform, ledger=failover)
    settlers = [Settler(m.pool, platform, batch_size=3, rebroadcast_after=0.3) for _ in range(2)]
    try:
        runs = [asyncio.create_task(s.settle_all(max_seconds=90)) for s in settlers]
        for _ in range(100):
            if len(held_by(log)) >= 2:
                break
            await asyncio.sleep(0.1)
        assert {how for how, _sig in held_by(log)} == {"forwarded", "dropped"}, held_by(log)
        os.kill(proc_a.pid, signal.SIGKILL)
        proc_a.wait(timeout=10)
        await asyncio.gather(*runs)
    finally:
        await failover.close()
        await server.close()

    # 0 lost: every trade settled; 0 doubled: each trade's memo is in exactly one landed transaction.
    assert [t["status"] for t in await m.pool.fetch("SELECT status FROM trades")] == ["settled"] * len(trades)
    seen: dict[int, int] = {}
    subs = await m.pool.fetch("SELECT signature, state FROM chain_submission WHERE kind = 'market.settlement'")
    for sub in subs:
        status = m.ledger.status(Signature.from_string(sub["signature"]))
        if status is None or status.err is not None:
            continue
        rec = await m.ledger.get_transaction(Signature.from_string(sub["signature"]))
        assert rec is not None
        keys = list(rec.transaction.message.account_keys)
        for ix in rec.transaction.message.instructions:
            if keys[ix.program_id_index] == MEMO_PROGRAM_ID:
                tid = int(bytes(ix.data).decode().removeprefix("gtx:t:"))
                seen[tid] = seen.get(tid, 0) + 1
    assert seen == {t["id"]: 1 for t in trades}
    assert (await reconcile(m.pool, m.platform)).mismatches == []
    assert await m.token_balance(m.chain.treasury_ata) == sum(t["fee"] for t in trades)
    for uid, wallet in traders:
        acc = await m.book.account_of(uid)
        assert await m.wallet_balance(wallet, Asset.ENERGY) == sum(t["qty"] for t in trades if t["buyer"] == acc)
        assert await m.wallet_balance(wallet, Asset.QUOTE) == sum(
            t["value"] - t["fee"] for t in trades if t["seller"] == acc)
    # What the killed provider held was reconciled by signature status; nothing is left open.
    states = {s["signature"]: s["state"] for s in subs}
    for how, sig in held_by(log):
        assert states[sig] in ("confirmed", "expired"), (how, sig)
        if how == "forwarded":
            assert states[sig] == "confirmed", sig
    assert "submitted" not in states.values()
    assert epoch.trade_count == len(trades)
