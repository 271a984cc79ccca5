"""A central mint process for crash tests: runs the mint worker and SIGKILLs itself at a hook point.

Usage: python acct_mint_crash_proc.py <dsn> <ledger dir> <keys dir> <energy mint> <crash point>
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
from solders.pubkey import Pubkey

from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.keys import load_key
from central.ledger.platform import Platform
from central.minting.service import mint_outbox


async def main(dsn: str, ledger_dir: str, keys_dir: str, mint: str, point: str) -> None:
    keys = Path(keys_dir)
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=Path(ledger_dir), slot_ms=400))
    chain = Platform(
        ledger=ledger,
        energy_mint=Pubkey.from_string(mint),
        mint_authority=load_key("mint_authority", keys / "mint_authority.json"),
        fee_payer=load_key("fee_payer", keys / "fee_payer.json"),
    )
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    calls = {"n": 0}

    def hook(at: str) -> None:
        if at == point:
            calls["n"] += 1
            if calls["n"] == 2:  # let one batch complete, die in the middle of the second
                os.kill(os.getpid(), signal.SIGKILL)

    await mint_outbox(pool, chain, batch_size=40, hook=hook).drain()
    await pool.close()
    await ledger.close()
    sys.exit(3)  # the hook should have killed us before


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
