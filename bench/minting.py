"""Minting service throughput, end to end on the embedded ledger: final settlement windows -> tokens confirmed.

    .venv/bin/python bench/minting.py [--meters 10000] [--windows 4] [--mode backlog|steady|both]

Complements ``bench/mint.py`` (the ledger's raw outbox path) with the whole minting service as central runs it:
verified readings already in PostgreSQL (signed protocol-v1 records, inserted before the clock starts) ->
accounting (per-meter windows, exact interpolation, checkpoints, Merkle roots, one chain-outbox intent per (meter,
window) in the same transaction) -> ``MintBuilder`` (owners' wallets, which token accounts exist) -> chain outbox
(pack into <=1232-byte v0 transactions with a memo + Merkle root, sign, write-ahead record, send to the embedded
LiteSVM ledger persisting to disk, reconcile by signature status) -> confirmed. The figure is (meter, window) mints
confirmed per second from the start of accounting to the last confirmation; the energy mint's on-chain supply is
checked against the database at the end.

Modes: ``backlog`` — all windows become final at once (e.g. after an outage); a destination wallet gets one
``mint_to_checked`` for all of its windows in the batch. ``steady`` — windows become final one at a time (each round
is one window of every meter, as every 15 minutes in production); the first round also creates the token accounts.
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
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central.accounting.pg_store import PgAccountingStore  # noqa: E402
from central.accounting.plugin import settle_all  # noqa: E402
from central.accounting.service import AccountingService  # noqa: E402
from central.accounting.window import DEFAULT_WINDOW_MS  # noqa: E402
from central.db.migrations import migrate_dsn  # noqa: E402
from central.ledger.config import LedgerConfig  # noqa: E402
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger  # noqa: E402
from central.ledger.setup import init_ledger  # noqa: E402
from central.ledger.tokens import parse_mint  # noqa: E402
from central.minting.queries import minted_wh  # noqa: E402
from central.minting.service import mint_outbox  # noqa: E402
from central.wallets.chain import chain_from_setup  # noqa: E402
from protocol.keys import DeviceKey  # noqa: E402
from protocol.record import ZERO_HASH, sign_reading  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
W = DEFAULT_WINDOW_MS
T0 = 1_790_000_000_000 - 1_790_000_000_000 % W
METERS_PER_GATEWAY = 100

READING_COLUMNS = (
    "device_id",
    "seq",
    "meter_id",
    "meter_serial",
    "timestamp_ms",
    "import_wh",
    "export_wh",
    "power_w",
    "flags",
    "prev_hash",
    "record_hash",
    "raw",
)


async def seed(pool: asyncpg.Pool, meters: int, windows: int) -> None:
    """Users with linked wallets, verified gateways, claimed meters, and windows+1 signed readings per meter."""
    users, wallets, meter_rows, readings = [], [], [], []
    gateways = [DeviceKey.generate() for _ in range((meters + METERS_PER_GATEWAY - 1) // METERS_PER_GATEWAY)]
    devices = [(g.device_id, g.public_key, "verified") for g in gateways]
    seqs = {g.device_id: (0, ZERO_HASH) for g in gateways}
    meter_ids = []
    for m in range(meters):
        uid, mid = uuid.uuid4(), uuid.uuid4()
        users.append((uid, f"bench{m}@example.test", "x", "prosumer"))
        wallets.append((uid, DeviceKey.generate().device_id))
        g = gateways[m // METERS_PER_GATEWAY]
        meter_rows.append((mid, f"BM-{m}", g.device_id, "sim", "modbus", "solar", "x", uid))
        meter_ids.append((mid, f"BM-{m}", g))
    for k in range(windows + 1):
        for mid, serial, g in meter_ids:
            seq, prev = seqs[g.device_id]
            rec = sign_reading(
                g,
                meter_serial=serial,
                seq=seq + 1,
                timestamp_ms=T0 + k * W,
                import_wh=10 * k,
                export_wh=1000 + k * (100 + mid.int % 900),
                power_w=None,
                prev_hash=prev,
            )
            seqs[g.device_id] = (rec.seq, rec.hash())
            readings.append(
                (
                    g.device_id,
                    rec.seq,
                    mid,
                    serial,
                    rec.timestamp_ms,
                    rec.import_wh,
                    rec.export_wh,
                    None,
                    0,
                    rec.prev_hash,
                    rec.hash(),
                    rec.encode(),
                )
            )
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("users", records=users, columns=("id", "email", "password_hash", "role"))
        await conn.copy_records_to_table("devices", records=devices, columns=("device_id", "public_key", "status"))
        await conn.copy_records_to_table(
            "meters",
            records=meter_rows,
            columns=("id", "serial", "device_id", "model", "protocol", "source", "meter_key_hash", "owner_id"),
        )
        now = datetime.now(UTC)
        nonces = [(secrets.token_bytes(16), u, w, now) for u, w in wallets]
        await conn.copy_records_to_table(
            "wallet_link_nonces", records=nonces, columns=("nonce", "user_id", "wallet", "expires_at")
        )
        await conn.copy_records_to_table(
            "wallets",
            records=[(u, w, now, n[0]) for (u, w), n in zip(wallets, nonces, strict=True)],
            columns=("user_id", "address", "linked_at", "link_nonce"),
        )
        await conn.copy_records_to_table("readings", records=readings, columns=READING_COLUMNS)


async def run_mode(mode: str, meters: int, windows: int, batch: int, slot_ms: int) -> dict[str, object]:
    name = f"gtx_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    tmp = tempfile.TemporaryDirectory(prefix="gtx-bench-minting-")
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    pool: asyncpg.Pool | None = None
    ledger: EmbeddedLedger | None = None
    try:
        await migrate_dsn(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        assert pool is not None
        ledger = EmbeddedLedger(
            EmbeddedConfig(data_dir=Path(tmp.name) / "ledger", slot_ms=slot_ms, fsync_interval=0.05)
        )
        setup = await init_ledger(LedgerConfig(keys_dir=Path(tmp.name) / "keys", create_keys=True), ledger)
        chain = chain_from_setup(ledger, setup, embedded=True)
        await seed(pool, meters, windows)
        outbox = mint_outbox(pool, chain, batch_size=batch)
        store = PgAccountingStore(pool)
        accounting_s = mint_s = 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        if mode == "backlog":
            t = time.perf_counter()
            async with pool.acquire() as lock_conn:
                final = await settle_all(AccountingService(store, batch_meters=meters), lock_conn)
            accounting_s += time.perf_counter() - t
            t = time.perf_counter()
            totals = await outbox.drain(max_seconds=3600)
            mint_s += time.perf_counter() - t
            transactions = totals.transactions
        else:
            final = transactions = 0
            async with pool.acquire() as conn:  # hide readings beyond the current round, then reveal them
                await conn.execute("ALTER TABLE readings RENAME TO readings_all")
                await conn.execute("CREATE TABLE readings (LIKE readings_all INCLUDING ALL)")
            for k in range(windows + 1):
                async with pool.acquire() as conn:
                    await conn.execute(
                        "INSERT INTO readings SELECT * FROM readings_all WHERE timestamp_ms = $1", T0 + k * W
                    )
                t = time.perf_counter()
                async with pool.acquire() as lock_conn:
                    final += await settle_all(AccountingService(store, batch_meters=meters), lock_conn)
                accounting_s += time.perf_counter() - t
                t = time.perf_counter()
                transactions += (await outbox.drain(max_seconds=3600)).transactions
                mint_s += time.perf_counter() - t
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        confirmed = int(await pool.fetchval("SELECT count(*) FROM chain_intent WHERE state = 'confirmed'"))
        acc = await ledger.get_account(setup.energy_mint)
        info = parse_mint(acc) if acc is not None else None
        result: dict[str, object] = {
            "mode": mode,
            "meters": meters,
            "windows": windows,
            "windows_final": final,
            "mints_confirmed": confirmed,
            "transactions": transactions,
            "mints_per_tx": round(confirmed / max(transactions, 1), 1),
            "accounting_s": round(accounting_s, 2),
            "mint_s": round(mint_s, 2),
            "end_to_end_s": round(elapsed, 2),
            "mints_per_s_end_to_end": round(confirmed / elapsed),
            "central_process_cpu_s": round(cpu, 2),
            "supply_equals_db_wh": info is not None and info.supply == await minted_wh(pool),
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
        return result
    finally:
        if pool is not None:
            await pool.close()
        if ledger is not None:
            await ledger.close()
        tmp.cleanup()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=10_000)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--mode", choices=("backlog", "steady", "both"), default="both")
    p.add_argument("--batch", type=int, default=4000, help="mint intents claimed per outbox round")
    p.add_argument("--slot-ms", type=int, default=400)
    args = p.parse_args()
    modes = ("backlog", "steady") if args.mode == "both" else (args.mode,)
    for mode in modes:
        print(json.dumps(asyncio.run(run_mode(mode, args.meters, args.windows, args.batch, args.slot_ms)), indent=2))


if __name__ == "__main__":
    main()
