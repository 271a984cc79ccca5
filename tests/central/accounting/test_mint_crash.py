"""Crash tests: the central mint process is SIGKILLed right after recording a submission (before sending) and
right after sending (before recording the confirmation). After a restart no window is minted twice and none is
lost: the energy mint's on-chain supply equals the sum of all mint intents, each confirmed exactly once."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from solders.pubkey import Pubkey

from central.accounting.mint_intent import MINT_KIND
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.platform import Platform
from central.minting.service import mint_outbox
from tests.central.accounting.acct_chain import embedded_chain
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
from tests.central.crash_proc import run_until_killed

HERE = Path(__file__).parent


async def prepare(pool: asyncpg.Pool, tmp: Path) -> tuple[Platform, dict[str, str], int]:
    """60 owners with wallets, one meter each, 4 windows: 240 intents. Returns the closed chain's key files."""
    keys = tmp / "keys"
    chain = await embedded_chain(keys, tmp / "ledger", slot_ms=400)
    owners = [await add_user(pool) for _ in range(60)]
    site = await seed_site(pool, owners, [f"S-{i}" for i in range(60)])
    await feed(pool, site, T0, 13, {s: 10 + i for i, s in enumerate(site.meters)})
    assert await account_all(pool) == 240
    for o in owners:
        await link_wallet(pool, o)
    expected = int(await pool.fetchval("SELECT sum((payload->>'wh')::bigint) FROM chain_intent"))
    await chain.ledger.close()
    return chain, {"keys": str(keys), "mint": str(chain.energy_mint)}, expected


def run_and_kill(dsn: str, tmp: Path, info: dict[str, str], point: str) -> None:
    run_until_killed(HERE / "acct_mint_crash_proc.py", [dsn, str(tmp / "ledger"), info["keys"], info["mint"], point],
                     import_dir=HERE)


async def restart_and_finish(pool: asyncpg.Pool, tmp: Path, chain: Platform, *, expire: bool) -> EmbeddedLedger:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=tmp / "ledger", slot_ms=400))
    if expire:
        ledger.advance_slots(200)  # the recorded, unsent transaction can no longer land
    restarted = Platform(ledger, chain.energy_mint, chain.mint_authority, chain.fee_payer)
    await mint_outbox(pool, restarted).drain()
    return ledger


async def check_exactly_once(pool: asyncpg.Pool, ledger: EmbeddedLedger, mint: Pubkey, expected: int) -> None:
    chain = Platform(ledger, mint, None, None)  # type: ignore[arg-type]
    states = dict(await pool.fetch("SELECT state, count(*) FROM chain_intent WHERE kind = $1 GROUP BY 1", MINT_KIND))
    assert states == {"confirmed": 240}
    assert await energy_supply(chain) == expected
    # per owner too: each wallet holds exactly its meter's Wh
    for r in await pool.fetch(
        "SELECT w.address AS wallet, sum((c.payload->>'wh')::bigint) AS wh FROM chain_intent c "
        "JOIN wallets w ON w.user_id::text = c.payload->>'owner' GROUP BY 1"
    ):
        assert await energy_balance(chain, r["wallet"]) == r["wh"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "expire"),
    [
        ("before_send", False),  # killed after the write-ahead commit, before sending: restart re-broadcasts
        ("before_send", True),  # ... and the chain moved past its last valid height: restart re-plans
        ("after_send", False),  # killed after sending, before the confirmation was recorded: restart confirms
    ],
)
async def test_killed_mid_submission_mints_each_window_once(
    pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path, point: str, expire: bool
) -> None:
    chain, info, expected = await prepare(pool, tmp_path)
    run_and_kill(pg_dsn, tmp_path, info, point)
    open_txs = await pool.fetchval("SELECT count(*) FROM chain_submission WHERE state = 'submitted'")
    assert open_txs > 0  # the crash left a recorded submission to reconcile
    ledger = await restart_and_finish(pool, tmp_path, chain, expire=expire)
    try:
        await check_exactly_once(pool, ledger, chain.energy_mint, expected)
        if expire:
            assert await pool.fetchval("SELECT count(*) FROM chain_submission WHERE state = 'expired'") > 0
    finally:
        await ledger.close()
