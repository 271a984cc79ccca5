"""The chain outbox on real PostgreSQL and the ledger (both adapters): exactly once, batched, failure isolation,
expiry and re-submission."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import asyncpg
import pytest
from prometheus_client import REGISTRY
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.chain.outbox import ChainOutbox, Intent, OutboxConfig, enqueue
from central.ledger.builder import memo, mint_to_owner
from central.ledger.packing import Unit
from central.ledger.port import MAX_PROCESSING_AGE
from tests.central.ledger.ledger_env import LedgerEnv

from .outbox_support import KIND, MintWorld, balance_of, make_outbox, make_world, supply


async def test_mints_each_intent_exactly_once_in_few_transactions(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    owners = [Keypair().pubkey() for _ in range(60)]
    items = [(f"m{i}:w{w}", {"owner": str(o), "amount": 1000 * w + i, "decimals": 3})
             for i, o in enumerate(owners) for w in range(1, 4)]
    outbox = make_outbox(pool, chain.ledger, world)
    assert await outbox.enqueue_many(items) == len(items)
    assert await outbox.enqueue_many(items[:10]) == 0  # duplicates are no-ops
    assert not await enqueue(pool, KIND, items[0][0], items[0][1])
    before = REGISTRY.get_sample_value("gtx_chain_intents_total", {"kind": KIND, "outcome": "confirmed"}) or 0
    total = await outbox.drain()
    assert total.confirmed == len(items)
    after = REGISTRY.get_sample_value("gtx_chain_intents_total", {"kind": KIND, "outcome": "confirmed"})
    assert after == before + len(items)
    assert total.transactions < len(items) / 5  # batched
    assert await outbox.counts() == {"confirmed": len(items)}
    assert await supply(chain.ledger, world.mint) == sum(int(p["amount"]) for _, p in items)
    for i, o in enumerate(owners):
        assert await balance_of(chain.ledger, o, world.mint) == sum(1000 * w + i for w in range(1, 4))
    view = await outbox.get("m0:w1")
    assert view is not None
    assert view.state == "confirmed"
    assert view.signature is not None
    # The recorded signature is the transaction that minted it, with the memo.
    record = await chain.ledger.get_transaction(Signature.from_string(view.signature))
    assert record is not None
    assert record.err is None
    # Nothing more to do: another drain is a no-op.
    again = await outbox.drain()
    assert again.submitted == 0
    assert await supply(chain.ledger, world.mint) == sum(int(p["amount"]) for _, p in items)


async def test_a_failing_intent_is_isolated_and_reported(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    good = [(f"g{i}", {"owner": str(Keypair().pubkey()), "amount": 10 + i, "decimals": 3}) for i in range(8)]
    bad = ("bad", {"owner": str(Keypair().pubkey()), "amount": 5, "decimals": 4})  # wrong decimals: fails on chain
    outbox = make_outbox(pool, chain.ledger, world)
    await outbox.enqueue_many([*good[:4], bad, *good[4:]])
    await outbox.drain()
    counts = await outbox.counts()
    assert counts == {"confirmed": 8, "failed": 1}
    assert await supply(chain.ledger, world.mint) == sum(int(p["amount"]) for _, p in good)
    problems = await outbox.problems()
    assert [p.key for p in problems] == ["bad"]
    assert problems[0].last_error is not None
    assert "InstructionError" in problems[0].last_error
    assert await outbox.retry_failed(["bad"]) == 1
    await outbox.drain()
    assert (await outbox.counts()).get("failed") == 1  # still bad, still reported, never applied
    assert await supply(chain.ledger, world.mint) == sum(int(p["amount"]) for _, p in good)


async def test_unsent_transaction_is_replaced_only_after_it_expired(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    """Crash between record and send (simulated in-process): the recorded transaction never reached the ledger.
    The intent stays submitted while the transaction could still land, then is re-submitted exactly once."""
    world = await make_world(chain.ledger)
    owner = Keypair().pubkey()

    class CrashError(Exception):
        pass

    def crash_before_send(point: str) -> None:
        if point == "before_send":
            raise CrashError

    crashing = make_outbox(pool, chain.ledger, world, hook=crash_before_send, rebroadcast_after=3600)
    await crashing.enqueue("only", {"owner": str(owner), "amount": 777, "decimals": 3})
    with pytest.raises(CrashError):
        await crashing.step()
    view = await crashing.get("only")
    assert view is not None
    assert view.state == "submitted"
    first_sig = view.signature

    restarted = make_outbox(pool, chain.ledger, world, rebroadcast_after=3600)
    r = await restarted.step()
    assert r.submitted == 0  # never re-sent while it could still land
    assert r.open_submissions == 1
    chain.embedded.advance_slots(MAX_PROCESSING_AGE + 1)
    await restarted.drain()
    view = await restarted.get("only")
    assert view is not None
    assert view.state == "confirmed"
    assert view.signature != first_sig
    assert view.attempts == 2
    assert await supply(chain.ledger, world.mint) == 777


async def test_unconfirmed_send_is_rebroadcast_not_duplicated(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    """Crash before sending, restart while the blockhash is valid: the SAME bytes are re-broadcast; it lands once."""
    world = await make_world(chain.ledger)
    owner = Keypair().pubkey()

    def crash(point: str) -> None:
        if point == "before_send":
            raise asyncio.CancelledError

    crashing = make_outbox(pool, chain.ledger, world, hook=crash)
    await crashing.enqueue("one", {"owner": str(owner), "amount": 5, "decimals": 3})
    with pytest.raises(asyncio.CancelledError):
        await crashing.step()
    first = await crashing.get("one")
    assert first is not None
    restarted = make_outbox(pool, chain.ledger, world, rebroadcast_after=0)
    await restarted.drain()
    done = await restarted.get("one")
    assert done is not None
    assert (done.state, done.signature, done.attempts) == ("confirmed", first.signature, 1)
    assert await balance_of(chain.ledger, owner, world.mint) == 5


async def test_builder_may_defer_intents(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    outbox = make_outbox(pool, chain.ledger, world)
    inner = outbox._build

    async def only_even(intents):  # type: ignore[no-untyped-def]
        return await inner([i for i in intents if int(i.key) % 2 == 0])

    outbox._build = only_even
    await outbox.enqueue_many([(str(i), {"owner": str(Keypair().pubkey()), "amount": 1, "decimals": 3})
                               for i in range(6)])
    total = await outbox.drain()
    assert total.deferred == 3
    assert await outbox.counts() == {"confirmed": 3, "pending": 3}


async def test_run_loop_confirms_and_stops(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    outbox = make_outbox(pool, chain.ledger, world)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop, idle_interval=0.01))
    owner = Keypair().pubkey()
    await outbox.enqueue("live", {"owner": str(owner), "amount": 42, "decimals": 3})
    for _ in range(500):
        view = await outbox.get("live")
        if view is not None and view.state == "confirmed":
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await balance_of(chain.ledger, owner, world.mint) == 42


async def test_a_unit_too_large_for_any_transaction_fails_alone(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    outbox = make_outbox(pool, chain.ledger, world)
    inner = outbox._build

    async def with_huge_memo(intents):  # type: ignore[no-untyped-def]
        units = list(await inner(intents))
        return [replace(u, instructions=(*u.instructions, memo("x" * 1100))) if intents[k].key == "huge" else u
                for k, u in enumerate(units)]

    outbox._build = with_huge_memo
    await outbox.enqueue_many([(k, {"owner": str(Keypair().pubkey()), "amount": 3, "decimals": 3})
                               for k in ("a", "huge", "b")])
    await outbox.drain()
    assert await outbox.counts() == {"confirmed": 2, "failed": 1}
    view = await outbox.get("huge")
    assert view is not None
    assert view.last_error == "unit does not fit in one transaction"
    assert await supply(chain.ledger, world.mint) == 6


async def test_require_finalized_confirms_only_what_is_on_disk(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    outbox = make_outbox(pool, chain.ledger, world, require_finalized=True)
    await outbox.enqueue("f", {"owner": str(Keypair().pubkey()), "amount": 9, "decimals": 3})
    await outbox.drain()  # the ledger's group commit (50 ms) finalizes it
    view = await outbox.get("f")
    assert view is not None
    assert view.state == "confirmed"
    (status,) = await chain.ledger.get_signature_statuses([Signature.from_string(view.signature or "")])
    assert status is not None
    assert status.confirmation_status == "finalized"


def _grouping_outbox(pool: asyncpg.Pool, chain: LedgerEnv, world: MintWorld) -> ChainOutbox:
    """An outbox whose builder puts all intents of one owner into ONE unit (one mint of their sum) and whose memo
    names every intent: the unit grows with the owner's backlog, as energy mints did before issue 10 D1."""

    async def build(intents: Sequence[Intent]) -> list[Unit]:
        groups: dict[str, list[Intent]] = {}
        for it in intents:
            groups.setdefault(it.payload["owner"], []).append(it)
        return [Unit(mint_to_owner(world.payer.pubkey, Pubkey.from_string(owner), world.mint, world.authority.pubkey,
                                   amount=sum(int(i.payload["amount"]) for i in g),
                                   decimals=max(int(i.payload["decimals"]) for i in g)),
                     tag=tuple(i.id for i in g), compute_units=35_000 + 2_000 * len(g))
                for owner, g in groups.items()]

    def names_every_intent(units: Sequence[Unit]) -> list[Instruction]:
        return [memo(",".join(f"{i:020d}" for u in units for i in u.tag))]  # type: ignore[attr-defined]

    return ChainOutbox(pool, chain.ledger, OutboxConfig(kind=KIND), payer=world.payer, signers=[world.authority],
                       build=build, trailer=names_every_intent)


async def test_a_unit_too_large_with_several_intents_is_split_not_failed(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    world = await make_world(chain.ledger)
    owner = Keypair().pubkey()
    outbox = _grouping_outbox(pool, chain, world)
    await outbox.enqueue_many([(f"big{k}", {"owner": str(owner), "amount": k, "decimals": 3}) for k in range(150)])
    total = await outbox.drain()
    assert await outbox.counts() == {"confirmed": 150}
    assert total.failed == 0
    assert 2 < total.transactions < 20
    assert await balance_of(chain.ledger, owner, world.mint) == sum(range(150))


async def test_solo_intents_of_a_failed_unit_are_sent_alone(chain: LedgerEnv, pool: asyncpg.Pool) -> None:
    """A multi-intent unit that fails on chain sends its intents back as solo; each is then built and sent alone, so
    the bad one fails by itself and the others are minted (no endless retry of the whole unit)."""
    world = await make_world(chain.ledger)
    owner = Keypair().pubkey()
    outbox = _grouping_outbox(pool, chain, world)
    good = [(f"g{k}", {"owner": str(owner), "amount": 10 + k, "decimals": 3}) for k in range(5)]
    bad = ("bad", {"owner": str(owner), "amount": 5, "decimals": 4})  # wrong decimals: the whole unit fails
    await outbox.enqueue_many([*good[:2], bad, *good[2:]])
    total = await outbox.drain(max_seconds=20)
    assert await outbox.counts() == {"confirmed": 5, "failed": 1}
    assert total.retried == 6
    view = await outbox.get("bad")
    assert view is not None
    assert view.state == "failed"
    assert await balance_of(chain.ledger, owner, world.mint) == sum(10 + k for k in range(5))
    # an admin retry of the bad one fails it alone again, and nothing else is touched
    assert await outbox.retry_failed(["bad"]) == 1
    await outbox.drain(max_seconds=20)
    assert await outbox.counts() == {"confirmed": 5, "failed": 1}
