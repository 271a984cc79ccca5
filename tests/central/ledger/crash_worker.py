"""A central-like process for the crash tests: opens the embedded ledger from disk, runs the mint outbox, and
SIGKILLs itself at the named point. Run as ``python crash_worker.py DSN DATA_DIR WORLD_JSON CRASH_AT SLOT_MS`` with
``tests/central`` on ``PYTHONPATH`` (so ``ledger.*`` are these test modules, as pytest imports them)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
from ledger.outbox_support import MintWorld, make_outbox  # type: ignore[import-not-found]

from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger


async def main(dsn: str, data_dir: str, world: MintWorld, crash_at: str, slot_ms: int) -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=Path(data_dir), slot_ms=slot_ms))
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)

    def hook(point: str) -> None:
        if point == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    outbox = make_outbox(pool, ledger, world, hook=hook, batch_size=50)
    await outbox.drain(max_seconds=30)
    await pool.close()
    await ledger.close()


if __name__ == "__main__":
    world = MintWorld.from_json(Path(sys.argv[3]).read_text())
    asyncio.run(main(sys.argv[1], sys.argv[2], world, sys.argv[4], int(sys.argv[5])))
