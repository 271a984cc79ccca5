"""Contract of ``MarketStore``: the same cases on the in-memory fake and on PostgreSQL, through ``MarketService``.

Whatever the unit tests on the fake (``test_rules``) show holds on PostgreSQL too when these pass on both.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import pytest
from solders.keypair import Keypair

from central.market.clearing import order_set_hash
from central.market.epochs import EpochClock
from central.market.errors import (
    ConflictError,
    EpochClosedError,
    InsufficientEscrowError,
    InvalidOrderError,
    NotFoundError,
)
from central.market.escrow_seeds import Asset, EscrowAddresses
from central.market.memory import InMemoryMarketStore
from central.market.model import DepositToSign, PlaceOutcome, TransferRecord, TransferState
from central.market.port import EscrowStore, MarketStore, SettlementStore
from central.market.postgres import PgMarketStore
from central.market.service import MarketService
from tests.central.market.market_fixtures import T0, Clock, make_user

CLOCK = EpochClock(60)


class Harness(Protocol):
    @property
    def store(self) -> MarketStore: ...

    @property
    def escrow(self) -> EscrowStore: ...

    @property
    def settlements(self) -> SettlementStore: ...

    async def trader(self, energy: int = 0, quote: int = 0, *, wallet: bool = True) -> uuid.UUID: ...

    async def balances(self, account: int) -> dict[str, tuple[int, int]]: ...

    async def mark_closed(self, start: datetime) -> None: ...

    async def trades(self) -> list[tuple[int, int, int, int, int, int]]: ...

    async def intents(self) -> list[tuple[str, dict[str, Any]]]: ...

    async def confirm_settlements(self) -> None: ...


@dataclass
class MemoryHarness:
    store: InMemoryMarketStore

    @property
    def escrow(self) -> EscrowStore:
        return self.store

    @property
    def settlements(self) -> SettlementStore:
        return self.store

    async def trader(self, energy: int = 0, quote: int = 0, *, wallet: bool = True) -> uuid.UUID:
        uid = uuid.uuid4()
        if wallet:
            self.store.link_wallet(uid, str(Keypair().pubkey()))
        if energy or quote:
            acc = await self.store.account_of(uid)
            self.store.credit(acc, Asset.ENERGY, energy)
            self.store.credit(acc, Asset.QUOTE, quote)
        return uid

    async def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return {a.value: self.store.balance(account, a) for a in Asset}

    async def mark_closed(self, start: datetime) -> None:
        self.store.epoch_rows[start] = replace(self.store.epoch_rows[start], status="closed")

    async def trades(self) -> list[tuple[int, int, int, int, int, int]]:
        return [(t.buyer, t.seller, t.qty, t.price, t.value, t.fee) for t in self.store.trades]

    async def intents(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self.store.intents)

    async def confirm_settlements(self) -> None:
        self.store.confirm_settlements("sig")


@dataclass
class PgHarness:
    store: PgMarketStore
    pool: asyncpg.Pool

    @property
    def escrow(self) -> EscrowStore:
        return self.store

    @property
    def settlements(self) -> SettlementStore:
        return self.store

    async def trader(self, energy: int = 0, quote: int = 0, *, wallet: bool = True) -> uuid.UUID:
        uid = await make_user(self.pool, wallet=Keypair() if wallet else None)
        if energy or quote:
            acc = await self.store.account_of(uid)
            await self.pool.execute(
                "UPDATE escrow_balances SET available = CASE asset WHEN 'energy' THEN $2::bigint ELSE $3::bigint END "
                "WHERE account = $1",
                acc,
                energy,
                quote,
            )
        return uid

    async def balances(self, account: int) -> dict[str, tuple[int, int]]:
        rows = await self.pool.fetch("SELECT asset, available, locked FROM escrow_balances WHERE account = $1", account)
        return {r["asset"]: (r["available"], r["locked"]) for r in rows}

    async def mark_closed(self, start: datetime) -> None:
        await self.pool.execute("UPDATE epochs SET status = 'closed' WHERE start_at = $1", start)

    async def trades(self) -> list[tuple[int, int, int, int, int, int]]:
        rows = await self.pool.fetch("SELECT buyer, seller, qty, price, value, fee FROM trades ORDER BY id")
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def intents(self) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch("SELECT key, payload FROM chain_intent ORDER BY id")
        return [(r["key"], json.loads(r["payload"])) for r in rows]

    async def confirm_settlements(self) -> None:
        await self.pool.execute("UPDATE chain_intent SET state = 'confirmed', signature = 'sig', confirmed_at = now()")


@pytest.fixture(params=["memory", "postgres"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        return MemoryHarness(InMemoryMarketStore())
    pool: asyncpg.Pool = request.getfixturevalue("pool")  # only the PostgreSQL cases need a database
    return PgHarness(PgMarketStore(pool, EscrowAddresses(Keypair().pubkey())), pool)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(harness: Harness, clock: Clock) -> MarketService:
    return MarketService(harness.store, CLOCK, fee_bps=100, now=clock)


async def test_place_locks_depth_and_cancel(harness: Harness, svc: MarketService) -> None:
    seller, buyer = await harness.trader(energy=10_000), await harness.trader(quote=5000)
    s = await svc.place(seller, "sell", 4000, 900)
    b = await svc.place(buyer, "buy", 3000, 1500)
    assert (s.locked, b.locked, s.status, s.filled, s.epoch_start) == (4000, 4500, "open", 0, T0)
    acc_s, acc_b = await svc.account_of(seller), await svc.account_of(buyer)
    assert (await harness.balances(acc_s))["energy"] == (6000, 4000)
    assert (await harness.balances(acc_b))["quote"] == (500, 4500)
    depth = await svc.depth()
    assert (depth["epoch_start"], depth["epoch_end"]) == (T0, T0 + timedelta(seconds=60))
    assert depth["bids"] == [{"price": 1500, "qty": 3000, "orders": 1}]
    assert depth["asks"] == [{"price": 900, "qty": 4000, "orders": 1}]
    with pytest.raises(NotFoundError):
        await svc.cancel(seller, b.id)
    c = await svc.cancel(buyer, b.id)
    assert (c.id, c.status, c.locked) == (b.id, "cancelled", 0)
    assert (await harness.balances(acc_b))["quote"] == (5000, 0)
    with pytest.raises(ConflictError):
        await svc.cancel(buyer, b.id)
    assert [o.id for o in await svc.orders_of(buyer)] == [b.id]
    assert await svc.orders_of(buyer, open_only=True) == []


async def test_refusals(harness: Harness, svc: MarketService) -> None:
    uid = await harness.trader(energy=100, quote=100)
    with pytest.raises(InsufficientEscrowError):
        await svc.place(uid, "sell", 101, 10)
    with pytest.raises(InsufficientEscrowError):
        await svc.place(uid, "buy", 1000, 101)
    with pytest.raises(InvalidOrderError):
        await svc.place(uid, "hold", 1, 1)
    with pytest.raises(ConflictError, match="wallet"):
        await svc.place(await harness.trader(wallet=False), "buy", 10, 10)
    newcomer = await harness.trader()  # wallet, no market account yet: created, then the lock is refused
    with pytest.raises(InsufficientEscrowError):
        await svc.place(newcomer, "buy", 1000, 1000)
    assert await harness.balances(await svc.account_of(newcomer)) == {"energy": (0, 0), "quote": (0, 0)}
    assert await harness.balances(await svc.account_of(uid)) == {"energy": (100, 0), "quote": (100, 0)}
    stranger = uuid.uuid4()
    assert await svc.orders_of(stranger) == []
    assert await svc.fills_of(stranger) == []


async def test_clear_records_trades_intents_and_moves_escrow(
    harness: Harness, svc: MarketService, clock: Clock
) -> None:
    s1, s2, b1 = (
        await harness.trader(energy=10_000),
        await harness.trader(energy=10_000),
        await harness.trader(quote=100_000),
    )
    o_s1 = await svc.place(s1, "sell", 5000, 1000)
    o_s2 = await svc.place(s2, "sell", 5000, 3000, tif="gtc")
    o_b1 = await svc.place(b1, "buy", 8000, 2000)
    clock.advance(60)
    [e] = await svc.clear_due()
    assert (e.start, e.status, e.price, e.volume, e.curve_volume, e.order_count, e.trade_count, e.fee_bps) == (
        T0,
        "cleared",
        1500,
        5000,
        5000,
        3,
        1,
        100,
    )
    assert bytes.fromhex(e.order_set_hash or "") == order_set_hash(await svc.epoch_order_set(T0))
    assert await svc.epoch(T0) == e
    assert [x.start for x in await svc.epochs()] == [T0 + timedelta(seconds=60), T0]
    orders = {o.id: o for u in (s1, s2, b1) for o in await svc.orders_of(u)}
    assert (orders[o_s1.id].status, orders[o_s1.id].filled, orders[o_s1.id].locked) == ("filled", 5000, 0)
    assert (orders[o_s2.id].status, orders[o_s2.id].locked) == ("open", 5000)
    assert orders[o_s2.id].epoch_start == T0 + timedelta(seconds=60)
    assert (orders[o_b1.id].status, orders[o_b1.id].filled, orders[o_b1.id].locked) == ("expired", 5000, 0)
    acc_s1, acc_b1 = await svc.account_of(s1), await svc.account_of(b1)
    assert (await harness.balances(acc_b1))["quote"] == (100_000 - 7500, 7500)
    assert (await harness.balances(acc_s1))["energy"] == (5000, 5000)
    assert await harness.trades() == [(acc_b1, acc_s1, 5000, 1500, 7500, 75)]
    [(key, payload)] = await harness.intents()
    trade_id = payload["trade"]
    assert key == f"trade:{trade_id}"
    assert {k: payload[k] for k in ("buyer", "seller", "qty", "value", "fee")} == {
        "buyer": acc_b1,
        "seller": acc_s1,
        "qty": 5000,
        "value": 7500,
        "fee": 75,
    }
    [recent] = await svc.recent_trades()
    assert (recent["id"], recent["epoch_start"], recent["qty"], recent["status"]) == (trade_id, T0, 5000, "pending")
    assert set(recent) == {
        "id",
        "epoch_start",
        "qty",
        "price",
        "value",
        "status",
        "signature",
        "settled_at",
        "created_at",
    }
    [fill] = await svc.fills_of(s1)
    assert (fill["side"], fill["order_id"], fill["fee"], fill["value"]) == ("sell", o_s1.id, 75, 7500)
    [fill] = await svc.fills_of(b1)
    assert (fill["side"], fill["order_id"], fill["fee"]) == ("buy", o_b1.id, 0)
    assert await svc.clear_due() == []


async def test_closed_epoch_refuses_changes_and_is_cleared(harness: Harness, svc: MarketService, clock: Clock) -> None:
    uid = await harness.trader(energy=10_000)
    o = await svc.place(uid, "sell", 100, 100, tif="gtc")
    clock.advance(60)  # epoch over, not cleared yet: a new order lands in the new epoch
    o2 = await svc.place(uid, "sell", 100, 100)
    assert o2.epoch_start == o.epoch_start + timedelta(seconds=60)
    await harness.mark_closed(o2.epoch_start)
    with pytest.raises(EpochClosedError):
        await svc.place(uid, "sell", 100, 100)
    with pytest.raises(EpochClosedError):
        await svc.cancel(uid, o2.id)
    [e0] = await svc.clear_due()  # only the first is due
    assert (e0.start, e0.status, e0.order_count, e0.trade_count) == (T0, "settled", 1, 0)
    clock.advance(60)
    [e1] = await svc.clear_due()  # the closed one once it has ended
    assert (e1.start, e1.order_count) == (o2.epoch_start, 2)  # the rolled GTC order and o2


async def test_first_order_reaching_the_store_after_the_close_is_refused(
    harness: Harness, svc: MarketService, clock: Clock
) -> None:
    uid = await harness.trader(quote=10_000)
    clock.advance(59)
    req = svc.order_request(uid, "buy", 1000, 1000, "epoch", None)  # read the clock before the end; no epoch row yet
    clock.advance(1)
    [e0] = await svc.clear_due()  # the ended epoch is closed even though no order created its row
    assert (e0.start, e0.order_count) == (T0, 0)
    assert (await svc.store.place(req)).outcome is PlaceOutcome.CLOSED
    assert await svc.clear_due() == []
    assert (await harness.balances(await svc.account_of(uid)))["quote"] == (10_000, 0)


async def test_expiry_and_wallet_less_orders_release_at_the_close(
    harness: Harness, svc: MarketService, clock: Clock
) -> None:
    uid = await harness.trader(energy=1000)
    await svc.place(uid, "sell", 1000, 100, tif="gtc", expires_at=T0 + timedelta(seconds=130))
    clock.advance(60)
    await svc.clear_due()  # valid at 60 s and at the next close (120 s): rolls over
    assert (await svc.orders_of(uid))[0].status == "open"
    clock.advance(60)
    await svc.clear_due()  # not valid at 180 s: expires now
    [after] = await svc.orders_of(uid)
    assert (after.status, after.locked) == ("expired", 0)
    assert (await harness.balances(await svc.account_of(uid)))["energy"] == (1000, 0)


async def test_apply_settled_spends_the_owed_locks_and_settles_the_epoch(
    harness: Harness, svc: MarketService, clock: Clock
) -> None:
    seller, buyer = await harness.trader(energy=10_000), await harness.trader(quote=100_000)
    await svc.place(seller, "sell", 2000, 1000)
    await svc.place(buyer, "buy", 3000, 2000)  # 1000 Wh unfilled: released at the close
    clock.advance(60)
    [e] = await svc.clear_due()
    assert (e.status, e.price, e.volume) == ("cleared", 1500, 2000)
    acc_s, acc_b = await svc.account_of(seller), await svc.account_of(buyer)
    settlements = harness.settlements
    assert await settlements.apply_settled() == 0  # nothing confirmed yet
    [payload] = await settlements.pending_settlements(10)
    assert {k: payload[k] for k in ("buyer", "seller", "qty", "value", "fee")} == {
        "buyer": acc_b,
        "seller": acc_s,
        "qty": 2000,
        "value": 3000,
        "fee": 30,
    }
    assert await settlements.open_settlements() == 1
    assert (await harness.balances(acc_b))["quote"] == (100_000 - 3000, 3000)
    await harness.confirm_settlements()
    assert await settlements.open_settlements() == 0
    assert await settlements.pending_settlements(10) == []
    assert await settlements.apply_settled() == 1
    assert await settlements.apply_settled() == 0  # once
    assert (await harness.balances(acc_b))["quote"] == (100_000 - 3000, 0)
    assert (await harness.balances(acc_s))["energy"] == (8000, 0)
    assert (await svc.epoch(T0)).status == "settled"  # type: ignore[union-attr]
    [fill] = await svc.fills_of(seller)
    assert (fill["status"], fill["signature"], fill["fee"], fill["value"]) == ("settled", "sig", 30, 3000)


# ------------------------------------------------------------------------------------------------- escrow


def record(account: int, kind: str, amount: int, wallet: str, *, signed: bool) -> TransferRecord:
    return TransferRecord(
        uuid.uuid4(), account, Asset.QUOTE, kind, amount, wallet, b"message", 1000, "sig-w" if signed else None
    )


async def test_a_users_escrow_balances_in_one_step(harness: Harness) -> None:
    """``user_escrow_balances`` (the balances page's one statement) is ``escrow_balances`` of the user's account, and
    empty before the user's first market action (the service then makes the account)."""
    store = harness.escrow
    assert await store.user_escrow_balances(uuid.uuid4()) == {}
    uid = await harness.trader(energy=20, quote=500)
    mine = await store.user_escrow_balances(uid)
    assert mine == await store.escrow_balances(await store.account_of(uid))
    assert set(mine) == {"energy", "quote"}


async def test_escrow_deposit_lifecycle(harness: Harness) -> None:
    store = harness.escrow
    with pytest.raises(ConflictError, match="wallet"):
        await store.wallet_and_account(await harness.trader(wallet=False))
    uid = await harness.trader()
    wallet, acc = await store.wallet_and_account(uid)
    assert not await store.escrow_opened(acc, Asset.QUOTE)
    await store.mark_opened(acc, Asset.QUOTE)
    assert await store.escrow_opened(acc, Asset.QUOTE)
    assert not await store.escrow_opened(acc, Asset.ENERGY)
    dep = record(acc, "deposit", 700, wallet, signed=False)
    await store.record_transfer(dep)
    assert await store.waiting_deposits(acc) == 1
    assert [t.id for t in await store.open_transfers(None)] == [dep.id]
    assert await store.transfer_state(dep.id) == TransferState(dep.id, "built", None, 1000)
    other = await store.account_of(await harness.trader())
    with pytest.raises(NotFoundError):
        await store.submit_deposit(other, dep.id, lambda _row: "never")

    def refuse(row: DepositToSign) -> str:
        assert (row.status, row.message, row.wallet) == ("built", b"message", wallet)
        raise ConflictError("refused")

    with pytest.raises(ConflictError, match="refused"):
        await store.submit_deposit(acc, dep.id, refuse)
    assert (await store.transfer_state(dep.id)).status == "built"
    await store.submit_deposit(acc, dep.id, lambda _row: "sig-1")
    assert await store.waiting_deposits(acc) == 0  # signed: no longer waiting for the wallet
    assert await store.transfer_state(dep.id) == TransferState(dep.id, "submitted", "sig-1", 1000)
    await store.finish_transfer(dep.id, "confirmed", None)
    await store.finish_transfer(dep.id, "failed", "late")  # decided already: nothing changes
    view = await store.transfer_view(dep.id)
    assert (view.kind, view.asset, view.amount, view.wallet, view.status, view.signature, view.error) == (
        "deposit",
        "quote",
        700,
        wallet,
        "confirmed",
        "sig-1",
        None,
    )
    balances = await store.escrow_balances(acc)
    assert (balances["quote"]["available"], balances["quote"]["locked"]) == (700, 0)
    assert set(balances) == {"energy", "quote"}
    assert await store.open_transfers(None) == []
    never_sent = record(acc, "deposit", 5, wallet, signed=False)
    await store.record_transfer(never_sent)
    await store.finish_transfer(never_sent.id, "expired", "not submitted before the blockhash expired")
    assert (await store.transfer_view(never_sent.id)).status == "expired"
    assert (await harness.balances(acc))["quote"] == (700, 0)


async def test_escrow_withdrawal_locks_then_spends_or_returns(harness: Harness) -> None:
    store = harness.escrow
    uid = await harness.trader(quote=1000)
    acc = await store.account_of(uid)

    async def build(account: int, wallet: str) -> TransferRecord:
        return record(account, "withdrawal", 600, wallet, signed=True)

    with pytest.raises(InsufficientEscrowError):
        await store.start_withdrawal(uid, Asset.QUOTE, 1001, build)
    w1 = await store.start_withdrawal(uid, Asset.QUOTE, 600, build)
    assert (await harness.balances(acc))["quote"] == (400, 600)
    assert (await store.transfer_state(w1.id)).status == "submitted"
    await store.finish_transfer(w1.id, "failed", "boom")
    assert (await harness.balances(acc))["quote"] == (1000, 0)
    w2 = await store.start_withdrawal(uid, Asset.QUOTE, 600, build)
    assert [t.id for t in await store.open_transfers(w2.id)] == [w2.id]
    await store.finish_transfer(w2.id, "confirmed", None)
    await store.finish_transfer(w2.id, "confirmed", None)
    assert (await harness.balances(acc))["quote"] == (400, 0)
