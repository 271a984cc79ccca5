"""RPC failover (``central.ledger.failover``): reads from a healthy provider, and submissions that survive a provider
dying mid-flight. The providers are two JSON-RPC front ends, each its own process (``rpc_proxy_proc``), over the
same embedded ledger; the first one stops answering submissions part-way (forwarding some, dropping others) and is
killed by its PID while it holds them. A mint outbox and a settlement outbox (escrow → buyer transfers) run through
the failover ledger the whole time: 0 intents lost, 0 doubled (on-chain balances equal the intents exactly), and
every transaction the killed provider held is reconciled by signature status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.chain.outbox import ChainOutbox, Intent, OutboxConfig
from central.ledger.builder import associated_token_address, create_ata_idempotent, transfer_checked
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.errors import LedgerUnavailableError, TransactionRejectedError
from central.ledger.failover import FailoverLedger, SendOutcomeUnknownError
from central.ledger.jsonrpc import JsonRpcServer, serve
from central.ledger.keys import PlatformKey
from central.ledger.packing import Unit
from central.ledger.port import Ledger
from central.ledger.rpc import RpcLedger
from central.ledger.tokens import parse_mint
from tests.central.ledger.helpers import mint_to_owner
from tests.central.ledger.outbox_support import MintWorld, make_world, mint_builder, trailer
from tests.central.ledger.proxies import Proxies, held_by
from tests.services import free_port

MINTS = 60
SETTLEMENTS = 40


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedLedger, JsonRpcServer]]:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "ledger", slot_ms=10))
    server = await serve(ledger, "127.0.0.1", 0)
    try:
        yield ledger, server
    finally:
        await server.close()
        await ledger.close()


async def test_reads_move_to_a_healthy_provider() -> None:
    embedded = EmbeddedLedger(EmbeddedConfig(slot_ms=0))  # slots advance only when told: answers comparable
    server = await serve(embedded, "127.0.0.1", 0)
    second = await serve(embedded, "127.0.0.1", 0)
    dead = f"http://127.0.0.1:{free_port()}"
    ledger = FailoverLedger([RpcLedger(dead, timeout=2), RpcLedger(server.url, timeout=2),
                             RpcLedger(second.url, timeout=2)], retry_after_s=60)
    try:
        embedded.advance_slots(5)
        assert await ledger.get_block_height() == embedded.slot
        assert [h.up for h in ledger.health()] == [False, True, True]  # the dead one was tried, then skipped
        await server.close()
        assert (await ledger.get_latest_blockhash()).blockhash == embedded.latest_blockhash().blockhash
        assert [h.up for h in ledger.health()] == [False, False, True]
        await ledger.check_health()
        assert [h.up for h in ledger.health()] == [False, False, True]
        await second.close()
        with pytest.raises(LedgerUnavailableError, match="no ledger RPC provider answered"):
            await ledger.get_slot()
    finally:
        await ledger.close()
        await server.close()
        await second.close()
        await embedded.close()


def settle_builder(world: MintWorld, escrow: PlatformKey, escrow_ata: Pubkey):  # type: ignore[no-untyped-def]
    async def build(intents: Sequence[Intent]) -> list[Unit]:
        units = []
        for it in intents:
            buyer = Pubkey.from_string(it.payload["buyer"])
            units.append(Unit((create_ata_idempotent(world.payer.pubkey, buyer, world.mint),
                               transfer_checked(escrow_ata, world.mint, associated_token_address(buyer, world.mint),
                                                escrow.pubkey, amount=int(it.payload["amount"]), decimals=3)),
                              tag=it.id, compute_units=40_000))
        return units

    return build


@pytest.mark.slow
async def test_a_provider_killed_mid_run_loses_and_doubles_nothing(
        upstream: tuple[EmbeddedLedger, JsonRpcServer], proxies: Proxies, pool: asyncpg.Pool, tmp_path: Path) -> None:
    embedded, server = upstream
    world = await make_world(embedded)
    escrow = PlatformKey.generate("escrow_authority")
    escrow_total = 10**9
    escrow_ata = await mint_to_owner(embedded, world.payer.signer, world.authority.signer, world.mint, escrow.pubkey,
                                     escrow_total)
    log = tmp_path / "held.log"
    url_a, proc_a = proxies.start(server.url, "--hold-after", "3", "--log", str(log))
    url_b, _proc_b = proxies.start(server.url)
    ledger: Ledger = FailoverLedger([RpcLedger(url_a, timeout=30), RpcLedger(url_b, timeout=30)], retry_after_s=1.0)
    cfg = {"rebroadcast_after": 0.3, "max_units_per_tx": 3, "batch_size": 6}
    mints = ChainOutbox(pool, ledger, OutboxConfig(kind="mint", **cfg), payer=world.payer,  # type: ignore[arg-type]
                        signers=[world.authority], build=mint_builder(world), trailer=trailer)
    settlements = ChainOutbox(pool, ledger, OutboxConfig(kind="settlement", **cfg),  # type: ignore[arg-type]
                              payer=world.payer, signers=[escrow], build=settle_builder(world, escrow, escrow_ata))
    owners = {f"m{i}": (Keypair().pubkey(), 1_000 + i) for i in range(MINTS)}
    buyers = {f"s{i}": (Keypair().pubkey(), 2_000 + i) for i in range(SETTLEMENTS)}
    stop = asyncio.Event()
    runs = [asyncio.create_task(o.run(stop, idle_interval=0.05)) for o in (mints, settlements)]
    try:
        # Intents arrive in waves while the outboxes run; provider A stops answering submissions after its third
        # and is killed by its PID once it holds two (one forwarded, one dropped).
        killed = False
        for wave in range(10):
            for i in range(wave * MINTS // 10, (wave + 1) * MINTS // 10):
                owner, amount = owners[f"m{i}"]
                await mints.enqueue(f"m{i}", {"owner": str(owner), "amount": amount, "decimals": 3})
            for i in range(wave * SETTLEMENTS // 10, (wave + 1) * SETTLEMENTS // 10):
                buyer, amount = buyers[f"s{i}"]
                await settlements.enqueue(f"s{i}", {"buyer": str(buyer), "amount": amount})
            await asyncio.sleep(0.3)
            for _ in range(100 if wave == 5 and not killed else 0):  # by mid-run at the latest
                if len(held_by(log)) >= 2:
                    break
                await asyncio.sleep(0.1)
            if not killed and len(held_by(log)) >= 2:
                os.kill(proc_a.pid, signal.SIGKILL)
                proc_a.wait(timeout=10)
                killed = True
        assert killed, "provider A never held two transactions"
        for _ in range(300):
            counts = [await o.counts() for o in (mints, settlements)]
            if counts == [{"confirmed": MINTS}, {"confirmed": SETTLEMENTS}]:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*runs)
        await ledger.close()
    assert counts == [{"confirmed": MINTS}, {"confirmed": SETTLEMENTS}], counts  # 0 lost

    # 0 doubled: every balance on chain is exactly its one intent.
    for owner, amount in list(owners.values()) + list(buyers.values()):
        balance = embedded.token_balance(associated_token_address(owner, world.mint))
        assert balance is not None, owner
        assert balance.amount == amount, (owner, amount, balance)
    mint_account = embedded.account(world.mint)
    assert mint_account is not None
    info = parse_mint(mint_account)
    assert info is not None
    assert info.supply == escrow_total + sum(a for _o, a in owners.values())
    escrow_left = embedded.token_balance(escrow_ata)
    assert escrow_left is not None
    assert escrow_left.amount == escrow_total - sum(a for _o, a in buyers.values())

    # The killed provider held transactions (some forwarded and landed, some dropped): each is reconciled — its
    # submission confirmed (it landed, through A or through B) or expired and replaced; none is left open.
    held = held_by(log)
    assert held, "provider A held no transaction before it was killed"
    assert {how for how, _sig in held} == {"forwarded", "dropped"}
    states = {r["signature"]: r["state"] for r in await pool.fetch("SELECT signature, state FROM chain_submission")}
    for how, sig in held:
        assert states[sig] in ("confirmed", "expired"), (how, sig, states[sig])
        landed = embedded.status(Signature.from_string(sig))
        if how == "forwarded":
            assert landed is not None, sig
            assert states[sig] == "confirmed", sig
        assert (states[sig] == "confirmed") == (landed is not None and landed.err is None)
    assert "submitted" not in states.values()
    # Each intent was confirmed by exactly one landed transaction.
    rows = await pool.fetch("SELECT i.kind, i.key, s.signature FROM chain_intent i "
                            "JOIN chain_submission s ON s.id = i.submission_id")
    for r in rows:
        st = embedded.status(Signature.from_string(r["signature"]))
        assert st is not None, r
        assert st.err is None, r
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc_a.pid, 0)
        raise AssertionError("provider A still runs")


class _Fake:
    """A provider that reports a block height and knows no signature (a fake for the pure switching rule)."""

    def __init__(self, height: int) -> None:
        self.height = height
        self.dead = False

    async def get_block_height(self) -> int:
        if self.dead:
            raise LedgerUnavailableError("gone")
        return self.height

    async def get_signature_statuses(self, signatures: Sequence[Signature]) -> list[None]:
        if self.dead:
            raise LedgerUnavailableError("gone")
        return [None for _ in signatures]

    async def close(self) -> None:
        return None


async def test_statuses_never_come_from_a_provider_behind_the_height_already_read() -> None:
    """The outbox reads the height, then the statuses, and calls "unknown past the last valid height" expired: a
    provider behind that height must not answer "unknown" for a transaction that may have landed."""
    ahead, behind = _Fake(1_000), _Fake(900)
    ledger = FailoverLedger([ahead, behind], retry_after_s=60)  # type: ignore[list-item]
    sig = Signature.default()
    assert await ledger.get_block_height() == 1_000
    ahead.dead = True
    with pytest.raises(LedgerUnavailableError, match="no ledger RPC provider answered"):
        await ledger.get_signature_statuses([sig])
    behind.height = 1_000  # caught up: it may answer now
    assert await ledger.get_signature_statuses([sig]) == [None]


class _Sender:
    """A provider whose send fails in transport (``dies``) or is refused as already processed."""

    def __init__(self, *, dies: bool) -> None:
        self.dies = dies
        self.sent = 0

    async def send_transaction(self, _tx: object, *, skip_preflight: bool = True) -> Signature:
        self.sent += 1
        if self.dies:
            raise LedgerUnavailableError("connection reset")
        raise TransactionRejectedError("transaction rejected: AlreadyProcessed")

    async def close(self) -> None:
        return None


async def test_a_refusal_after_a_provider_died_mid_send_is_an_unknown_outcome() -> None:
    """Provider 1 may have forwarded the transaction before dying; provider 2's "already processed" must not be
    read as "never landed" (a wallet-signed deposit would be called expired while its tokens moved)."""
    dying, refusing = _Sender(dies=True), _Sender(dies=False)
    tx = object()
    ledger = FailoverLedger([dying, refusing])  # type: ignore[list-item]
    with pytest.raises(SendOutcomeUnknownError, match="provider 1 may have forwarded"):
        await ledger.send_transaction(tx, skip_preflight=False)  # type: ignore[arg-type]
    assert (dying.sent, refusing.sent) == (1, 1)
    alone = FailoverLedger([_Sender(dies=False)])  # type: ignore[list-item]
    with pytest.raises(TransactionRejectedError):  # nobody failed before: the refusal is the answer
        await alone.send_transaction(tx, skip_preflight=False)  # type: ignore[arg-type]
