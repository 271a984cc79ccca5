"""Mint throughput on the embedded ledger, end to end: minting service → durable chain outbox → ledger.

    .venv/bin/python bench/mint.py [--meters 10000] [--windows 4] [--slot-ms 400] [--raw [--group-by-owner]]

Default (the real path): 10,000 prosumers with linked wallets, one meter each, 4 final windows per meter enqueued as
mint intents by ``central.minting.service.enqueue_mints`` (as accounting does), then ``mint_outbox`` (the minting
service's ``MintBuilder``: wallet lookup, ATA existence check, one unit per wallet, Merkle-leaf memo) drives the
chain outbox: claim, build, pack into as few <=1232-byte v0 transactions as fit, sign, record (write-ahead), send to
the embedded LiteSVM ledger (persisting to disk, fsync every 50 ms), reconcile by signature status, confirm.
Intents are enqueued window-major by default (every meter's first window, then the second, ...: the steady state,
one window per wallet per batch); ``--order meter-major`` is a backlog, where the builder merges a wallet's windows.
The figure is confirmed (meter, window) intents per second from the first enqueue to the last confirmation; the
on-chain supply is checked against the sum of the intents.

``--raw`` benches the ledger + outbox alone with a minimal builder (idempotent ATA creation + ``mint_to_checked`` per
intent; ``--group-by-owner`` merges an owner's windows into one unit).

The machine is shared: the figure printed beside the wall-clock rate is the rate per CPU-second of the central
process (PostgreSQL's CPU not included) and the 1-minute load average, so a loaded run can be read for what it is.
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
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central.chain.outbox import ChainOutbox, Intent, OutboxConfig, enqueue_many  # noqa: E402
from central.db import migrate_dsn  # noqa: E402
from central.ledger.builder import memo, mint_to_owner  # noqa: E402
from central.ledger.config import LedgerConfig  # noqa: E402
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger  # noqa: E402
from central.ledger.packing import Unit  # noqa: E402
from central.ledger.setup import LedgerSetup, init_ledger  # noqa: E402
from central.ledger.tokens import parse_mint  # noqa: E402
from central.minting.plan import MintIntent  # noqa: E402
from central.minting.service import enqueue_mints, mint_outbox  # noqa: E402
from central.wallets.chain import Chain  # noqa: E402

WINDOW_MS = 15 * 60_000

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
            units.append(Unit(mint_to_owner(setup.fee_payer.pubkey, owner, setup.energy_mint,
                                            setup.mint_authority.pubkey, amount=amount,
                                            decimals=setup.energy_decimals),
                              tag=tuple(i.id for i in group_intents), compute_units=32_000))
        return units

    return build


def trailer(units: Sequence[Unit]) -> list:  # type: ignore[type-arg]
    ids = [i for u in units for i in u.tag]  # type: ignore[attr-defined]
    return [memo(f"gtx:mint:v1:{min(ids)}-{max(ids)}:{len(ids)}")]


async def seed_prosumers(pool: asyncpg.Pool, meters: int, windows: int) -> list[MintIntent]:
    """Prosumers with linked wallets (rows as the wallet-link flow leaves them) and their final windows."""
    users = [uuid.uuid4() for _ in range(meters)]
    wallets = [str(Keypair().pubkey()) for _ in range(meters)]
    nonces = [secrets.token_bytes(16) for _ in range(meters)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO users (id, email, password_hash, role, email_verified_at) "
            "SELECT u, 'p' || i || '@bench.example', 'x', 'prosumer', now() "
            "FROM unnest($1::uuid[]) WITH ORDINALITY AS t(u, i)", users)
        await conn.execute(
            "INSERT INTO wallet_link_nonces (nonce, user_id, wallet, expires_at, used_at) "
            "SELECT n, u, w, now() + interval '5 minutes', now() FROM unnest($1::bytea[], $2::uuid[], $3::text[]) "
            "AS t(n, u, w)", nonces, users, wallets)
        await conn.execute(
            "INSERT INTO wallets (user_id, address, linked_at, link_nonce) "
            "SELECT u, w, now(), n FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS t(u, w, n)",
            users, wallets, nonces)
    t0 = 1_790_000_000_000 - 1_790_000_000_000 % WINDOW_MS
    return [MintIntent(0, uuid.uuid5(uuid.NAMESPACE_OID, f"meter-{m}"), users[m], t0 + w * WINDOW_MS,
                       t0 + (w + 1) * WINDOW_MS, 1 + (m * 7 + w * 13) % 5000, secrets.token_bytes(32))
            for m in range(meters) for w in range(windows)]


async def run(args: argparse.Namespace) -> None:
    name = f"gtx_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    tmp = tempfile.TemporaryDirectory(prefix="gtx-bench-mint-")
    try:
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
        await migrate_dsn(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        cfg = LedgerConfig.from_section({"data_dir": f"{tmp.name}/ledger", "keys_dir": f"{tmp.name}/keys",
                                         "slot_ms": args.slot_ms, "create_keys": True})
        ledger = EmbeddedLedger(EmbeddedConfig(data_dir=cfg.data_dir, slot_ms=cfg.slot_ms, fsync_interval=0.05))
        setup = await init_ledger(cfg, ledger)
        if args.raw:
            owners = [str(Keypair().pubkey()) for _ in range(args.meters)]
            items = [(f"meter-{m}:w{w}", {"owner": owners[m], "wh": 1 + (m * 7 + w * 13) % 5000})
                     for m in range(args.meters) for w in range(args.windows)]
            expected = sum(int(p["wh"]) for _, p in items)
            n_items = len(items)
            outbox = ChainOutbox(pool, ledger, OutboxConfig(kind="mint", batch_size=args.batch),
                                 payer=setup.fee_payer, signers=[setup.mint_authority],
                                 build=builder(setup, group=args.group_by_owner), trailer=trailer)
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(0, len(items), 10_000):
                await enqueue_many(pool, "mint", items[i:i + 10_000])
        else:
            intents = await seed_prosumers(pool, args.meters, args.windows)
            if args.order == "window-major":  # as windows finalise in steady state: every meter's window 1, then 2...
                intents.sort(key=lambda i: (i.window_start_ms, str(i.meter_id)))
            expected = sum(i.amount_wh for i in intents)
            n_items = len(intents)
            chain = Chain(ledger, setup.energy_mint, setup.mint_authority, setup.fee_payer)
            outbox = mint_outbox(pool, chain, batch_size=args.batch)
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(0, len(intents), 10_000):
                async with pool.acquire() as conn, conn.transaction():
                    await enqueue_mints(conn, intents[i:i + 10_000])
        t1 = time.perf_counter()
        total = await outbox.drain(max_seconds=3600)
        t2 = time.perf_counter()
        cpu = time.process_time() - c0
        acc = await ledger.get_account(setup.energy_mint)
        info = parse_mint(acc) if acc is not None else None
        counts = await outbox.counts()
        print(json.dumps({
            "path": "raw ledger+outbox" if args.raw else "minting service (MintBuilder) + outbox",
            "order": args.order,
            "meters": args.meters, "windows": args.windows, "intents": n_items,
            "grouping": ("by owner" if args.group_by_owner else "none") if args.raw else "per wallet (MintBuilder)",
            "transactions": total.transactions,
            "intents_per_tx": round(n_items / max(total.transactions, 1), 1),
            "enqueue_s": round(t1 - t0, 2), "outbox_s": round(t2 - t1, 2), "end_to_end_s": round(t2 - t0, 2),
            "confirmed": counts.get("confirmed", 0),
            "mints_per_s_end_to_end": round(counts.get("confirmed", 0) / (t2 - t0)),
            "central_process_cpu_s": round(cpu, 2),
            "mints_per_cpu_s_of_central_process": round(counts.get("confirmed", 0) / cpu),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "supply_matches": info is not None and info.supply == expected,
            "ledger_log_mb": round((cfg.data_dir / "ledger.log").stat().st_size / 1e6, 1),
        }, indent=2))
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
    p.add_argument("--raw", action="store_true", help="ledger + outbox only, minimal builder")
    p.add_argument("--order", choices=["window-major", "meter-major"], default="window-major",
                   help="enqueue order: window-major (steady state, one window per meter per batch) or meter-major "
                        "(a backlog: the builder merges a wallet's windows into one mint)")
    p.add_argument("--group-by-owner", action="store_true", help="with --raw: one unit per owner")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
