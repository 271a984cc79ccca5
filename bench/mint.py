"""Mint throughput on the embedded ledger, end to end through the durable chain outbox.

    .venv/bin/python bench/mint.py [--meters 10000] [--windows 4] [--group-by-owner] [--slot-ms 400]

What is measured: (meter, window) intents enqueued in PostgreSQL → claimed, built (idempotent ATA creation +
``mint_to_checked``), packed into as few ≤1232-byte v0 transactions as fit (with a memo per transaction), signed,
recorded (write-ahead), sent to the embedded LiteSVM ledger (persisting to disk, fsync every 50 ms), reconciled by
signature status and marked confirmed. The figure is confirmed intents per second from the first enqueue to the
last confirmation; the on-chain supply is checked against the sum of the intents at the end.

``--group-by-owner`` lets one unit carry all of a meter's pending windows (one ATA creation, one mint of their sum,
every intent recorded against that transaction) — what a minting service does when it catches up on a backlog.

This benches the raw batched mint path (ledger + outbox); the minting service's own bookkeeping is not included.
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), as the tests do; creates and drops its own database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central.chain.outbox import ChainOutbox, Intent, OutboxConfig, enqueue_many  # noqa: E402
from central.ledger.builder import memo, mint_to_owner  # noqa: E402
from central.ledger.config import LedgerConfig  # noqa: E402
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger  # noqa: E402
from central.ledger.packing import Unit  # noqa: E402
from central.ledger.setup import LedgerSetup, init_ledger  # noqa: E402
from central.ledger.tokens import parse_mint  # noqa: E402

MIGRATION = ROOT / "central" / "db" / "migrations" / "0020_chain_outbox.sql"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def builder(setup: LedgerSetup, *, group: bool):  # type: ignore[no-untyped-def]
    async def build(intents: Sequence[Intent]) -> list[Unit]:
        by_owner: dict[str, list[Intent]] = defaultdict(list)
        if group:
            for it in intents:
                by_owner[it.payload["owner"]].append(it)
        else:
            for it in intents:
                by_owner[f"{it.payload['owner']}#{it.id}"].append(it)
        units = []
        for key, group_intents in by_owner.items():
            owner = Pubkey.from_string(key.split("#")[0])
            amount = sum(int(i.payload["wh"]) for i in group_intents)
            units.append(
                Unit(
                    mint_to_owner(
                        setup.fee_payer.pubkey,
                        owner,
                        setup.energy_mint,
                        setup.mint_authority.pubkey,
                        amount=amount,
                        decimals=setup.energy_decimals,
                    ),
                    tag=tuple(i.id for i in group_intents),
                    compute_units=32_000,
                )
            )
        return units

    return build


def trailer(units: Sequence[Unit]) -> list:  # type: ignore[type-arg]
    ids = [i for u in units for i in u.tag]  # type: ignore[attr-defined]
    return [memo(f"gtx:mint:v1:{min(ids)}-{max(ids)}:{len(ids)}")]


async def run(args: argparse.Namespace) -> None:
    name = f"gtx_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    tmp = tempfile.TemporaryDirectory(prefix="gtx-bench-mint-")
    try:
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
        conn = await asyncpg.connect(dsn)
        await conn.execute(MIGRATION.read_text())
        await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        cfg = LedgerConfig.from_section(
            {
                "data_dir": f"{tmp.name}/ledger",
                "keys_dir": f"{tmp.name}/keys",
                "slot_ms": args.slot_ms,
                "create_keys": True,
            }
        )
        ledger = EmbeddedLedger(EmbeddedConfig(data_dir=cfg.data_dir, slot_ms=cfg.slot_ms, fsync_interval=0.05))
        setup = await init_ledger(cfg, ledger)
        owners = [str(Keypair().pubkey()) for _ in range(args.meters)]
        items = [
            (f"meter-{m}:w{w}", {"owner": owners[m], "wh": 1 + (m * 7 + w * 13) % 5000})
            for m in range(args.meters)
            for w in range(args.windows)
        ]
        expected = sum(int(p["wh"]) for _, p in items)
        outbox = ChainOutbox(
            pool,
            ledger,
            OutboxConfig(kind="mint", batch_size=args.batch),
            payer=setup.fee_payer,
            signers=[setup.mint_authority],
            build=builder(setup, group=args.group_by_owner),
            trailer=trailer,
        )
        c0 = time.process_time()
        t0 = time.perf_counter()
        for i in range(0, len(items), 10_000):
            await enqueue_many(pool, "mint", items[i : i + 10_000])
        t1 = time.perf_counter()
        total = await outbox.drain(max_seconds=3600)
        t2 = time.perf_counter()
        cpu = time.process_time() - c0
        acc = await ledger.get_account(setup.energy_mint)
        info = parse_mint(acc) if acc is not None else None
        counts = await outbox.counts()
        print(
            json.dumps(
                {
                    "meters": args.meters,
                    "windows": args.windows,
                    "intents": len(items),
                    "group_by_owner": args.group_by_owner,
                    "transactions": total.transactions,
                    "intents_per_tx": round(len(items) / max(total.transactions, 1), 1),
                    "enqueue_s": round(t1 - t0, 2),
                    "outbox_s": round(t2 - t1, 2),
                    "end_to_end_s": round(t2 - t0, 2),
                    "confirmed": counts.get("confirmed", 0),
                    "mints_per_s_end_to_end": round(counts.get("confirmed", 0) / (t2 - t0)),
                    "central_process_cpu_s": round(cpu, 2),
                    "mints_per_cpu_s_of_central_process": round(counts.get("confirmed", 0) / cpu),
                    "load_average_1min": round(os.getloadavg()[0], 1),
                    "supply_matches": info is not None and info.supply == expected,
                    "ledger_log_mb": round((cfg.data_dir / "ledger.log").stat().st_size / 1e6, 1),
                },
                indent=2,
            )
        )
        await pool.close()
        await ledger.close()
    finally:
        tmp.cleanup()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=10_000)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--batch", type=int, default=2000, help="intents claimed per outbox round")
    p.add_argument("--slot-ms", type=int, default=400)
    p.add_argument("--group-by-owner", action="store_true")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
