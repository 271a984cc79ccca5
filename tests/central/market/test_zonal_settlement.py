"""A multi-zone epoch end to end on real PostgreSQL and the embedded ledger: orders in their meters' zones, zonal
clearing at the epoch close, settlement paying grid fees and losses to the grid operator in each trade's own
transaction, escrow reconciled, and the published order set recomputing the trades."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest
from solders.keypair import Keypair
from solders.signature import Signature

from central.ledger.tokens import MEMO_PROGRAM_ID
from central.market.clearing import OrderBook
from central.market.config import ZoneConfig, ZonesConfig
from central.market.escrow_seeds import Asset
from central.market.reconcile import reconcile
from central.market.settler import Settler
from central.market.zonal import clear_zonal, zonal_order_set_hash
from central.market.zones import ZoneParams
from tests.central.market.market_fixtures import Market, give_meter, make_market, make_user

OPERATOR = Keypair()


@pytest.fixture
async def market(pool: asyncpg.Pool) -> AsyncIterator[Market]:
    zoning = ZonesConfig(
        grid_operator=str(OPERATOR.pubkey()),
        zone=(
            ZoneConfig("grid"),
            ZoneConfig("a", parent="grid", fee_per_kwh=10, fee_bps=100, loss_bps=200, meters=("SN-S", "SN-B1")),
            ZoneConfig("b", parent="grid", fee_per_kwh=10, meters=("SN-B2",)),
        ),
    )
    async for m in make_market(pool, fee_bps=100, zoning=zoning):
        yield m


async def test_multi_zone_epoch_settles_with_grid_fees_to_the_operator(market: Market) -> None:
    """Zone a: seller S sells 10000 Wh @100, B1 buys 4000 @180; zone b: B2 buys 3000 @200.
    Market a: 4000 Wh at floor((180 + 100) / 2) = 140: value 560, platform fee 5, no grid fee, no loss.
    S's 6000 Wh left go to the grid market across a (Λ 200, F 10, P 100): 5880 Wh at ceil(113.17) = 114; B2 across
    b (F 10): 3000 Wh at floor((200·10000 − 10·10000) / 10000) = 190. Grid market: 3000 Wh at floor(304 / 2) = 152:
    value 456; S's grid fee 10·3 + floor(4.56) = 34, B2's 10·3 = 30; platform fee min(4, 456 − 34) = 4; B2 pays 486,
    S receives 418, the operator 64, the treasury 4. Energy: S sends ceil(3000·10000/9800) = 3062, B2 receives 3000,
    the operator gets the 62 Wh lost."""
    m = market
    s_uid, s_wallet = await m.trader(energy=10_000)
    b1_uid, b1_wallet = await m.trader(quote=1_000_000)
    b2_uid, b2_wallet = await m.trader(quote=1_000_000)
    for uid, serial in ((s_uid, "SN-S"), (b1_uid, "SN-B1"), (b2_uid, "SN-B2")):
        await give_meter(m.pool, uid, serial)
    assert await m.deposit(s_uid, s_wallet, "energy", 10_000) == "confirmed"
    for uid, wallet in ((b1_uid, b1_wallet), (b2_uid, b2_wallet)):
        assert await m.deposit(uid, wallet, "quote", 1_000_000) == "confirmed"
    await m.book.place(s_uid, "sell", 10_000, 100)
    await m.book.place(b1_uid, "buy", 4000, 180)
    await m.book.place(b2_uid, "buy", 3000, 200)
    m.clock.advance(60)
    [epoch] = await m.book.clear_due()
    assert epoch.trade_count == 2

    rows = await m.pool.fetch(
        "SELECT zone, qty, delivered, price, value, fee, grid_fee_seller, grid_fee_buyer, grid_operator "
        "FROM trades ORDER BY seq"
    )
    op = str(OPERATOR.pubkey())
    assert [tuple(r) for r in rows] == [
        (1, 4000, 4000, 140, 560, 5, 0, 0, op),
        (0, 3062, 3000, 152, 456, 4, 34, 30, op),
    ]
    zones = await m.pool.fetch("SELECT zone, name, price, volume, grid_fees, losses FROM epoch_zones ORDER BY zone")
    assert [tuple(z) for z in zones] == [
        (0, "grid", 152, 3000, 64, 62),
        (1, "a", 140, 4000, 0, 0),
        (2, "b", None, 0, 0, 0),
    ]

    [b2_fill] = await m.book.fills_of(b2_uid)
    assert (b2_fill["qty"], b2_fill["value"], b2_fill["grid_fee"], b2_fill["loss"], b2_fill["utility"]) == (
        3000, 456, 30, 62, False
    )
    s_fills = await m.book.fills_of(s_uid)
    assert [(f["qty"], f["grid_fee"], f["zone"]) for f in s_fills] == [(3062, 34, 0), (4000, 0, 1)]

    settler = Settler(m.pool, m.platform)
    assert await settler.settle_all() == 2
    assert (await reconcile(m.pool, m.platform)).mismatches == []

    # On chain: the operator got both sides' grid fees and the loss; everyone else their share, to the base unit.
    assert await m.wallet_balance(OPERATOR, Asset.QUOTE) == 64
    assert await m.wallet_balance(OPERATOR, Asset.ENERGY) == 62
    assert await m.wallet_balance(b1_wallet, Asset.ENERGY) == 4000
    assert await m.wallet_balance(b2_wallet, Asset.ENERGY) == 3000
    assert await m.wallet_balance(s_wallet, Asset.QUOTE) == 555 + 418
    assert await m.token_balance(m.chain.treasury_ata) == 9
    assert await m.token_balance(m.chain.escrow(await m.book.account_of(b2_uid), Asset.QUOTE)) == 1_000_000 - 486
    assert await m.token_balance(m.chain.escrow(await m.book.account_of(s_uid), Asset.ENERGY)) == 10_000 - 7062

    # The cross-zone trade's transfers (loss and grid fee included) travel in one transaction with its memo.
    tid, sig = await m.pool.fetchrow("SELECT id, signature FROM trades WHERE zone = 0")
    rec = await m.ledger.get_transaction(Signature.from_string(sig))
    assert rec is not None
    msg = rec.transaction.message
    keys = list(msg.account_keys)
    memos = [bytes(ix.data).decode() for ix in msg.instructions if keys[ix.program_id_index] == MEMO_PROGRAM_ID]
    assert f"gtx:t:{tid}" in memos
    assert m.chain.wallet_ata(OPERATOR.pubkey(), Asset.QUOTE) in keys
    assert m.chain.wallet_ata(OPERATOR.pubkey(), Asset.ENERGY) in keys

    # Anyone can recompute the trades from the published order set and zone parameters.
    e = await m.pool.fetchrow("SELECT order_set_hash, zone_params FROM epochs WHERE trade_count = 2")
    cols = np.array(
        [tuple(r) for r in await m.pool.fetch(
            "SELECT order_id, account, side, qty, price, zone FROM epoch_orders ORDER BY order_id")],
        dtype=np.int64,
    ).T
    book = OrderBook.from_arrays(order_id=cols[0], user=cols[1], side=cols[2], qty=cols[3], price=cols[4])
    params = ZoneParams.decode(e["zone_params"])
    assert zonal_order_set_hash(book, cols[5], params) == e["order_set_hash"]
    again = clear_zonal(book, cols[5], params, 100)
    assert again.trade_sent.tolist() == [r["qty"] for r in rows]
    assert again.trade_grid_fee.tolist() == [r["grid_fee_seller"] + r["grid_fee_buyer"] for r in rows]


async def test_the_utility_buys_and_sells_at_its_tariffs_and_settles(pool: asyncpg.Pool) -> None:
    """Zone a's boundary costs 1000 units/kWh, so nothing crosses. P (zone a) sells 1500 Wh @55 <= feed-in 60: the
    utility buys it at 60 (value 90); C (zone b) buys 2000 Wh @260 >= retail 250: the utility sells at 250 (value
    500). No grid fee, loss or platform fee on utility trades; the utility's escrow funds them."""
    utility_wallet = Keypair()
    utility_uid = await make_user(pool, "admin", wallet=utility_wallet)
    zoning = ZonesConfig(
        grid_operator=str(OPERATOR.pubkey()),
        utility_user=str(utility_uid),
        zone=(
            ZoneConfig("grid"),
            ZoneConfig("a", parent="grid", fee_per_kwh=1000, meters=("U-P",), retail=250, feed_in=60),
            ZoneConfig("b", parent="grid", meters=("U-C",), retail=250, feed_in=60),
        ),
    )
    async for m in make_market(pool, fee_bps=100, zoning=zoning):
        await m.fund_wallet(utility_wallet, energy=5000, quote=1000)
        assert await m.deposit(utility_uid, utility_wallet, "energy", 5000) == "confirmed"
        assert await m.deposit(utility_uid, utility_wallet, "quote", 1000) == "confirmed"
        p_uid, p_wallet = await m.trader(energy=1500)
        c_uid, c_wallet = await m.trader(quote=100_000)
        await give_meter(m.pool, p_uid, "U-P")
        await give_meter(m.pool, c_uid, "U-C")
        assert await m.deposit(p_uid, p_wallet, "energy", 1500) == "confirmed"
        assert await m.deposit(c_uid, c_wallet, "quote", 100_000) == "confirmed"
        await m.book.place(p_uid, "sell", 1500, 55)
        await m.book.place(c_uid, "buy", 2000, 260)
        m.clock.advance(60)
        [epoch] = await m.book.clear_due()
        assert epoch.trade_count == 2
        u_acc = await m.book.account_of(utility_uid)
        rows = await m.pool.fetch(
            "SELECT buyer, seller, buy_order IS NULL AS b_none, sell_order IS NULL AS s_none, zone, qty, delivered, "
            "price, value, fee, grid_fee_seller + grid_fee_buyer AS grid FROM trades ORDER BY seq"
        )
        p_acc, c_acc = await m.book.account_of(p_uid), await m.book.account_of(c_uid)
        assert [tuple(r) for r in rows] == [
            (u_acc, p_acc, True, False, 1, 1500, 1500, 60, 90, 0, 0),
            (c_acc, u_acc, False, True, 2, 2000, 2000, 250, 500, 0, 0),
        ]
        zones = await m.pool.fetch("SELECT name, utility_bought, utility_sold FROM epoch_zones ORDER BY zone")
        assert [tuple(z) for z in zones] == [("grid", 0, 0), ("a", 0, 1500), ("b", 2000, 0)]

        [c_fill] = await m.book.fills_of(c_uid)
        assert (c_fill["side"], c_fill["qty"], c_fill["value"], c_fill["utility"]) == ("buy", 2000, 500, True)
        assert [f["order_id"] is None for f in await m.book.fills_of(utility_uid)] == [True, True]
        assert await Settler(m.pool, m.platform).settle_all() == 2
        assert (await reconcile(m.pool, m.platform)).mismatches == []
        assert await m.wallet_balance(c_wallet, Asset.ENERGY) == 2000
        assert await m.wallet_balance(p_wallet, Asset.QUOTE) == 90
        assert await m.wallet_balance(utility_wallet, Asset.QUOTE) == 500
        assert await m.wallet_balance(utility_wallet, Asset.ENERGY) == 1500
        assert await m.token_balance(m.chain.escrow(u_acc, Asset.ENERGY)) == 5000 - 2000
        assert await m.token_balance(m.chain.escrow(u_acc, Asset.QUOTE)) == 1000 - 90
        rows = await m.pool.fetch("SELECT asset, available, locked FROM escrow_balances WHERE account = $1", u_acc)
        balances = {r["asset"]: (r["available"], r["locked"]) for r in rows}
        assert balances == {"energy": (3000, 0), "quote": (910, 0)}
