"""Crash tests: a real process running the embedded ledger and the mint outbox is SIGKILLed between recording and
sending, between sending and recording the outcome, and between reading statuses and recording them. After a
restart (ledger reopened from disk, outbox reconciling first) every intent is minted exactly once, checked against
the on-chain supply and each owner's balance."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from solders.keypair import Keypair

from central.chain.outbox import enqueue_many
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from tests.central.crash_proc import run_until_killed

from .outbox_support import KIND, balance_of, make_outbox, make_world, supply

HERE = Path(__file__).resolve().parent
SLOT_MS = 5


@pytest.mark.parametrize("crash_at", ["before_send", "after_send", "before_record_status"])
async def test_killed_process_mints_each_window_exactly_once(crash_at: str, empty_pg_dsn: str, pool: asyncpg.Pool,
                                                             tmp_path: Path) -> None:
    data_dir = tmp_path / "ledger"
    cfg = EmbeddedConfig(data_dir=data_dir, slot_ms=SLOT_MS)
    ledger = EmbeddedLedger(cfg)
    world = await make_world(ledger)
    await ledger.close()
    world_file = tmp_path / "world.json"
    world_file.write_text(world.to_json())

    owners = [Keypair().pubkey() for _ in range(40)]
    items = [(f"{i}:{w}", {"owner": str(o), "amount": 100 * w + i, "decimals": 3})
             for i, o in enumerate(owners) for w in range(3)]
    await enqueue_many(pool, KIND, items)

    run_until_killed(HERE / "crash_worker.py", [empty_pg_dsn, str(data_dir), str(world_file), crash_at, str(SLOT_MS)],
                     import_dir=HERE.parent)

    states = {r["state"] for r in await pool.fetch("SELECT state FROM chain_intent")}
    assert "submitted" in states  # the kill left work in flight

    restarted = EmbeddedLedger(cfg)  # central restarts: the ledger comes back from disk
    try:
        on_chain_before = await supply(restarted, world.mint)
        if crash_at == "before_send":
            assert on_chain_before == 0
        else:
            assert on_chain_before > 0
        again = make_outbox(pool, restarted, world, rebroadcast_after=0.2)
        await again.drain(max_seconds=30)
        assert await again.counts() == {"confirmed": len(items)}
        assert await supply(restarted, world.mint) == sum(int(p["amount"]) for _, p in items)
        for i, o in enumerate(owners):
            assert await balance_of(restarted, o, world.mint) == sum(100 * w + i for w in range(3))
        dupes = await pool.fetchval("SELECT count(*) FROM (SELECT key FROM chain_intent GROUP BY key "
                                    "HAVING count(*) > 1) d")
        assert dupes == 0
    finally:
        await restarted.close()
