"""Issue 10 D1 on real PostgreSQL and the embedded (LiteSVM) ledger: a large backlog of one wallet's mints is split
into transactions that fit, instead of one unit that can never fit and is failed for good."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from central.accounting.mint_intent import MINT_KIND
from central.chain.outbox import ChainOutbox, Intent, OutboxConfig
from central.db.migrations import MIGRATIONS_DIR
from central.ledger.packing import Unit
from central.ledger.platform import Platform
from central.minting.service import MintBuilder, mint_outbox, release_accrued
from tests.central.accounting.acct_mint_env import (
    T0,
    account_all,
    add_user,
    energy_balance,
    energy_supply,
    feed,
    link_wallet,
    seed_site,
)
from tests.central.accounting.acct_mint_env import minted_wh_in_db as minted_in_db


async def test_wallet_linked_after_500_exported_windows_gets_all_500_minted(
    pool: asyncpg.Pool, chain: Platform
) -> None:
    alice = await add_user(pool)
    site = await seed_site(pool, [alice], ["BIG-1"])
    await feed(pool, site, T0, 3 * 500 + 1, {"BIG-1": 7})  # a reading every 5 min: 500 final 15-minute windows
    assert await account_all(pool) == 500

    outbox = mint_outbox(pool, chain)
    before = await outbox.drain()
    assert before.deferred == 500  # no wallet yet: all accrue
    wallet = await link_wallet(pool, alice)
    assert await release_accrued(pool, alice) == 500

    totals = await outbox.drain()
    assert await outbox.counts() == {"confirmed": 500}
    assert totals.failed == 0
    assert 1 < totals.transactions <= 10  # split into parts that fit (about 65 windows each), still batched
    assert await energy_supply(chain) == await minted_in_db(pool) == 7 * 3 * 500
    assert await energy_balance(chain, wallet.device_id) == 7 * 3 * 500


async def test_previously_failed_oversized_mints_are_minted_after_retry_and_migration(
    pool: asyncpg.Pool, chain: Platform
) -> None:
    """Intents failed by the old code ("unit does not fit in one transaction") are minted again: some through the
    admin retry (solo), the rest through migration 0076, which puts them back to pending."""
    alice = await add_user(pool)
    site = await seed_site(pool, [alice], ["OLD-1"])
    await feed(pool, site, T0, 3 * 80 + 1, {"OLD-1": 3})
    assert await account_all(pool) == 80
    wallet = await link_wallet(pool, alice)
    # what the old code left behind: all 80 failed together
    await pool.execute(
        "UPDATE chain_intent SET state = 'failed', last_error = 'unit does not fit in one transaction' "
        "WHERE kind = $1",
        MINT_KIND,
    )
    keys = [r["key"] for r in await pool.fetch("SELECT key FROM chain_intent WHERE kind = $1 ORDER BY id", MINT_KIND)]
    outbox = mint_outbox(pool, chain)
    assert await outbox.retry_failed(keys[:5]) == 5
    await outbox.drain()
    assert await outbox.counts() == {"confirmed": 5, "failed": 75}

    migration = (MIGRATIONS_DIR / "0076_requeue_oversized_mints.sql").read_text()
    await pool.execute(migration)
    rows = await pool.fetch("SELECT state, last_error FROM chain_intent WHERE kind = $1 AND state <> 'confirmed'",
                            MINT_KIND)
    assert {(r["state"], r["last_error"]) for r in rows} == {("pending", None)}
    totals = await outbox.drain()
    assert totals.failed == 0
    assert await outbox.counts() == {"confirmed": 80}
    assert await energy_supply(chain) == await minted_in_db(pool) == 3 * 3 * 80
    assert await energy_balance(chain, wallet.device_id) == 3 * 3 * 80


async def test_parts_that_do_not_fit_the_outbox_are_split_again_by_the_mint_builder(
    pool: asyncpg.Pool, chain: Platform
) -> None:
    """The plan measures parts without a compute-unit price; an outbox configured with one adds an instruction, so
    the largest parts no longer fit. The outbox has the builder re-build halves of them: all are still minted."""
    alice = await add_user(pool)
    site = await seed_site(pool, [alice], ["PRICE-1"])
    await feed(pool, site, T0, 3 * 200 + 1, {"PRICE-1": 4})
    assert await account_all(pool) == 200
    wallet = await link_wallet(pool, alice)
    builder = MintBuilder(pool, chain)
    builds: list[int] = []

    async def counting(intents: Sequence[Intent]) -> Sequence[Unit]:
        builds.append(len(intents))
        return await builder(intents)

    outbox = ChainOutbox(
        pool,
        chain.ledger,
        OutboxConfig(MINT_KIND, batch_size=4000, compute_unit_price=1),
        payer=chain.fee_payer,
        signers=[chain.mint_authority],
        build=counting,
        trailer=builder.trailer,
    )
    totals = await outbox.drain()
    assert builds[0] == 200
    assert len(builds) > 1  # halves re-built
    assert totals.failed == 0
    assert await outbox.counts() == {"confirmed": 200}
    assert await energy_supply(chain) == await minted_in_db(pool) == 4 * 3 * 200
    assert await energy_balance(chain, wallet.device_id) == 4 * 3 * 200
