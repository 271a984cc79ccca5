"""End to end on real PostgreSQL and the embedded ledger: deposit, order, clear, settle, withdraw — with the escrow
invariant (on-chain escrow = available + locked, per user and mint) checked after every step."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import asyncpg
import pytest
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.market.client import describe, sign_transaction_request
from central.market.errors import InsufficientEscrowError, InvalidTransactionError, NotFoundError, TooManyWaitingError
from central.market.escrow import MAX_WAITING_DEPOSITS
from central.market.escrow_seeds import Asset
from central.market.reconcile import ESCROW_MISMATCHES, reconcile
from central.market.settler import Settler
from tests.central.market.market_fixtures import Market, make_market
from tests.memo_logs import memo_texts


@pytest.fixture
async def market(pool: asyncpg.Pool) -> AsyncIterator[Market]:
    async for m in make_market(pool):
        yield m


async def invariant(m: Market) -> None:
    report = await reconcile(m.pool, m.platform)
    assert report.mismatches == []
    assert report.pending == 0
    assert ESCROW_MISMATCHES._value.get() == 0


async def escrow_of(m: Market, uid: object) -> dict[str, tuple[int, int]]:
    b = await m.escrow.balances(uid)  # type: ignore[arg-type]
    return {k: (int(v["available"]), int(v["locked"])) for k, v in b.items()}


async def test_full_flow_deposit_order_clear_settle_withdraw(market: Market) -> None:
    m = market
    seller, s_wallet = await m.trader(energy=10_000)
    buyer, b_wallet = await m.trader(quote=1_000_000)
    assert await m.deposit(seller, s_wallet, "energy", 8000) == "confirmed"
    await invariant(m)
    assert await m.deposit(buyer, b_wallet, "quote", 500_000) == "confirmed"
    await invariant(m)
    assert await m.wallet_balance(s_wallet, Asset.ENERGY) == 2000
    assert (await escrow_of(m, seller))["energy"] == (8000, 0)

    await m.book.place(seller, "sell", 5000, 1000)
    await m.book.place(buyer, "buy", 6000, 1200)  # locks floor(6000 * 1200 / 1000) = 7200
    await invariant(m)
    extra = await m.book.place(seller, "sell", 3000, 5000)
    assert (await escrow_of(m, seller))["energy"] == (0, 8000)
    await invariant(m)
    await m.book.cancel(seller, extra.id)
    assert (await escrow_of(m, seller))["energy"] == (3000, 5000)
    await invariant(m)
    m.clock.advance(60)
    [epoch] = await m.book.clear_due()
    assert (epoch.price, epoch.volume) == (1100, 5000)
    await invariant(m)
    # value = floor(5000 * 1100 / 1000) = 5500, fee = floor(5500 * 100 / 10000) = 55; 1700 of the lock released.
    assert (await escrow_of(m, buyer))["quote"] == (500_000 - 5500, 5500)

    settler = Settler(m.pool, m.platform)
    assert await settler.settle_all() == 1
    await invariant(m)
    assert await m.wallet_balance(b_wallet, Asset.ENERGY) == 5000
    assert await m.wallet_balance(s_wallet, Asset.QUOTE) == 5445
    assert await m.token_balance(m.chain.treasury_ata) == 55
    assert (await escrow_of(m, buyer))["quote"] == (494_500, 0)
    assert (await escrow_of(m, seller))["energy"] == (3000, 0)
    [trade] = await m.pool.fetch("SELECT * FROM trades")
    assert trade["status"] == "settled"
    record = await m.ledger.get_transaction(Signature.from_string(trade["signature"]))
    assert record is not None
    assert f"gtx:t:{trade['id']}" in memo_texts(record.logs)
    assert (await m.book.epoch(epoch.start)).status == "settled"  # type: ignore[union-attr]

    w = await m.escrow.withdraw(seller, "energy", 3000)
    assert w.status == "confirmed"
    await invariant(m)
    assert await m.wallet_balance(s_wallet, Asset.ENERGY) == 5000
    w = await m.escrow.withdraw(buyer, "quote", 494_500)
    assert w.status == "confirmed"
    await invariant(m)
    assert await m.wallet_balance(b_wallet, Asset.QUOTE) == 1_000_000 - 5500
    with pytest.raises(InsufficientEscrowError):
        await m.escrow.withdraw(buyer, "quote", 1)


async def test_deposit_must_be_the_built_message_signed_by_the_wallet(market: Market) -> None:
    m = market
    uid, wallet = await m.trader(quote=1000)
    req = await m.escrow.request_deposit(uid, "quote", 600)
    info = describe(req.transaction)
    assert info["fee_payer"] == str(m.chain.payer)
    assert info["signers"] == [str(m.chain.payer), str(wallet.pubkey())]
    # Signed by someone else.
    with pytest.raises(ValueError, match="not asked"):
        sign_transaction_request(req.transaction, Keypair())
    tx = VersionedTransaction.from_bytes(base64.b64decode(req.transaction))
    forged = VersionedTransaction.populate(
        tx.message, [tx.signatures[0], Keypair().sign_message(to_bytes_versioned(tx.message))]
    )
    with pytest.raises(InvalidTransactionError, match="does not verify"):
        await m.escrow.submit_deposit(uid, req.id, base64.b64encode(bytes(forged)).decode())
    # A different message (another deposit's), correctly signed, is refused for this id.
    other = await m.escrow.request_deposit(uid, "quote", 999)
    with pytest.raises(InvalidTransactionError, match="not the one built"):
        await m.escrow.submit_deposit(uid, req.id, sign_transaction_request(other.transaction, wallet))
    with pytest.raises(InvalidTransactionError, match="base64"):
        await m.escrow.submit_deposit(uid, req.id, "not a transaction")
    someone, _ = await m.trader()
    with pytest.raises(NotFoundError):
        await m.escrow.submit_deposit(someone, req.id, sign_transaction_request(req.transaction, wallet))
    await invariant(m)
    assert (await escrow_of(m, uid))["quote"] == (0, 0)
    # The genuine one goes through once.
    signed = sign_transaction_request(req.transaction, wallet)
    assert (await m.escrow.submit_deposit(uid, req.id, signed)).status == "confirmed"
    with pytest.raises(Exception, match="already confirmed"):
        await m.escrow.submit_deposit(uid, req.id, signed)
    assert (await escrow_of(m, uid))["quote"] == (600, 0)
    await invariant(m)


async def test_deposit_beyond_wallet_balance_fails_and_credits_nothing(market: Market) -> None:
    m = market
    uid, wallet = await m.trader(energy=100)
    assert await m.deposit(uid, wallet, "energy", 101) == "failed"
    assert (await escrow_of(m, uid))["energy"] == (0, 0)
    await invariant(m)


async def test_unsubmitted_deposit_expires(market: Market) -> None:
    m = market
    uid, wallet = await m.trader(energy=100)
    req = await m.escrow.request_deposit(uid, "energy", 50)
    m.ledger.advance_slots(200)
    assert await m.escrow.resolve_open() == 1
    with pytest.raises(Exception, match="already expired"):
        await m.escrow.submit_deposit(uid, req.id, sign_transaction_request(req.transaction, wallet))
    assert await m.wallet_balance(wallet, Asset.ENERGY) == 100


async def test_deposits_waiting_for_the_wallet_are_bounded_per_user(market: Market) -> None:
    """Each deposit asked for is a stored row until it expires: one user may have MAX_WAITING_DEPOSITS waiting; the
    next is refused with what to do, another user is not affected, and signing or expiry frees places."""
    m = market
    uid, wallet = await m.trader(quote=1000)
    waiting = [await m.escrow.request_deposit(uid, "quote", 1) for _ in range(MAX_WAITING_DEPOSITS)]
    with pytest.raises(TooManyWaitingError, match="sign one, or wait"):
        await m.escrow.request_deposit(uid, "quote", 1)
    other, _ = await m.trader(quote=10)
    await m.escrow.request_deposit(other, "quote", 1)
    signed = sign_transaction_request(waiting[0].transaction, wallet)
    assert (await m.escrow.submit_deposit(uid, waiting[0].id, signed)).status == "confirmed"
    await m.escrow.request_deposit(uid, "quote", 1)  # the signed one freed its place
    m.ledger.advance_slots(200)
    assert await m.escrow.resolve_open() == MAX_WAITING_DEPOSITS + 1  # every unsigned one expired
    assert len([await m.escrow.request_deposit(uid, "quote", 1) for _ in range(MAX_WAITING_DEPOSITS)]) == 10
    await invariant(m)
