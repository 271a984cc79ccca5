"""Mint throughput on the embedded ledger, end to end: minting service → durable chain outbox → ledger.

    .venv/bin/python bench/mint.py [--meters 10000] [--windows 4] [--slot-ms 400] [--batch N]
                                   [--raw [--group-by-owner]] [--order window-major|meter-major]
                                   [--from-readings [--mode backlog|steady|both]]

Default (the real path): 10,000 prosumers with linked wallets, one meter each, 4 final windows per meter enqueued as
mint intents by ``central.accounting.pg_store.enqueue_mints`` (as accounting does), then ``mint_outbox`` (the minting
service's ``MintBuilder``: wallet lookup, ATA existence check, one unit per wallet, Merkle-leaf memo) drives the
chain outbox: claim, build, pack into as few <=1232-byte v0 transactions as fit, sign, record (write-ahead), send to
the embedded LiteSVM ledger (persisting to disk, fsync every 50 ms), reconcile by signature status, confirm.
Intents are enqueued window-major by default (every meter's first window, then the second, ...: the steady state,
one window per wallet per batch); ``--order meter-major`` is a backlog, where the builder merges a wallet's windows.
The figure is confirmed (meter, window) intents per second from the first enqueue to the last confirmation; the
on-chain supply is checked against the sum of the intents.

``--raw`` benches the ledger + outbox alone with a minimal builder (idempotent ATA creation + ``mint_to_checked`` per
intent; ``--group-by-owner`` merges an owner's windows into one unit).

``--from-readings`` benches the whole minting service as central runs it: verified readings already in PostgreSQL
(signed protocol-v1 records, inserted before the clock starts) -> accounting (per-meter windows, exact
interpolation, checkpoints, Merkle roots, one chain-outbox intent per (meter, window) in the same transaction) ->
``MintBuilder`` -> chain outbox -> confirmed. The figure is (meter, window) mints confirmed per second from the start
of accounting to the last confirmation; the energy mint's on-chain supply is checked against the database at the end.
Modes: ``backlog`` — all windows become final at once (e.g. after an outage); a destination wallet gets one
``mint_to_checked`` for all of its windows in the batch. ``steady`` — windows become final one at a time (each round
is one window of every meter, as every 15 minutes in production); the first round also creates the token accounts.
``both`` (the default) runs the two, each on its own database, and prints one figure set per mode.

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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baseline import print_baseline, ratio  # noqa: E402 - bench/ is the script directory

from central.accounting.mint_intent import MintIntent  # noqa: E402
from central.accounting.pg_store import PgAccountingStore, enqueue_mints  # noqa: E402
from central.accounting.service import AccountingService  # noqa: E402
from central.accounting.window import DEFAULT_WINDOW_MS  # noqa: E402
from central.chain.outbox import ChainOutbox, Intent, OutboxConfig, enqueue_many  # noqa: E402
from central.db import migrate_dsn  # noqa: E402
from central.ledger.builder import memo, mint_to_owner  # noqa: E402
from central.ledger.config import LedgerConfig  # noqa: E402
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger  # noqa: E402
from central.ledger.packing import Unit  # noqa: E402
from central.ledger.platform import platform_from_setup  # noqa: E402
from central.ledger.setup import LedgerSetup, init_ledger  # noqa: E402
from central.ledger.tokens import parse_mint  # noqa: E402
from central.minting.queries import minted_wh  # noqa: E402
from central.minting.service import mint_outbox  # noqa: E402
from protocol.keys import DeviceKey  # noqa: E402
from protocol.record import POWER_NOT_AVAILABLE, ZERO_HASH, ReadingFields, sign_reading  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

W = DEFAULT_WINDOW_MS
WINDOW_MS = W
T0 = 1_790_000_000_000 - 1_790_000_000_000 % W
METERS_PER_GATEWAY = 100

#: ``reading_rows`` (migration 0090); seeded into ``readings_all`` (same columns) and revealed round by round.
READING_COLUMNS = (
    "seq",
    "timestamp_ms",
    "import_wh",
    "export_wh",
    "device_key",
    "meter_key",
    "power_w",
    "flags",
    "prev_hash",
    "signature",
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
                ReadingFields(
                    meter_serial=serial,
                    seq=seq + 1,
                    timestamp_ms=T0 + k * W,
                    import_wh=10 * k,
                    export_wh=1000 + k * (100 + mid.int % 900),
                    power_w=None,
                    prev_hash=prev,
                ),
            )
            seqs[g.device_id] = (rec.seq, rec.hash())
            readings.append(
                (rec.seq, rec.timestamp_ms, rec.import_wh, rec.export_wh, g.device_id, mid, POWER_NOT_AVAILABLE, 0,
                 rec.prev_hash, rec.signature)
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
        device_keys = dict(await conn.fetch("SELECT device_id, device_key FROM devices"))
        meter_keys = dict(await conn.fetch("SELECT id, meter_key FROM meters"))
        rows = [(*r[:4], device_keys[r[4]], meter_keys[r[5]], *r[6:]) for r in readings]
        await conn.execute("CREATE TABLE readings_all (LIKE reading_rows)")
        await conn.copy_records_to_table("readings_all", records=rows, columns=READING_COLUMNS)
        await conn.execute("SELECT reading_partition_for(t) FROM (SELECT DISTINCT timestamp_ms FROM readings_all) x(t)")


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


@dataclass
class Bench:
    pool: asyncpg.Pool
    ledger: EmbeddedLedger
    setup: LedgerSetup
    ledger_log: Path


@asynccontextmanager
async def bench_env(slot_ms: int) -> AsyncIterator[Bench]:
    """A fresh migrated database and an embedded ledger persisting to a temporary directory, set up by
    ``init_ledger``; all dropped afterwards."""
    name = f"gtx_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    tmp = tempfile.TemporaryDirectory(prefix="gtx-bench-mint-")
    pool: asyncpg.Pool | None = None
    ledger: EmbeddedLedger | None = None
    try:
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
        await migrate_dsn(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        assert pool is not None
        cfg = LedgerConfig(data_dir=Path(f"{tmp.name}/ledger"), keys_dir=Path(f"{tmp.name}/keys"), slot_ms=slot_ms,
                           create_keys=True)
        assert cfg.data_dir is not None
        ledger = EmbeddedLedger(EmbeddedConfig(data_dir=cfg.data_dir, slot_ms=cfg.slot_ms, fsync_interval=0.05))
        setup = await init_ledger(cfg, ledger)
        yield Bench(pool, ledger, setup, cfg.data_dir / "ledger.log")
    finally:
        if pool is not None:
            await pool.close()
        if ledger is not None:
            await ledger.close()
        tmp.cleanup()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def supply(b: Bench) -> int | None:
    acc = await b.ledger.get_account(b.setup.energy_mint)
    info = parse_mint(acc) if acc is not None else None
    return info.supply if info is not None else None


async def run_intents(args: argparse.Namespace) -> dict[str, object]:
    """Mint intents enqueued directly: through the minting service (default) or a minimal builder (``--raw``)."""
    async with bench_env(args.slot_ms) as b:
        pool, setup = b.pool, b.setup
        outbox: ChainOutbox
        if args.raw:
            owners = [str(Keypair().pubkey()) for _ in range(args.meters)]
            items = [(f"meter-{m}:w{w}", {"owner": owners[m], "wh": 1 + (m * 7 + w * 13) % 5000})
                     for m in range(args.meters) for w in range(args.windows)]
            expected = sum(int(p["wh"]) for _, p in items)
            n_items = len(items)
            outbox = ChainOutbox(pool, b.ledger, OutboxConfig(kind="mint", batch_size=args.batch),
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
            outbox = mint_outbox(pool, platform_from_setup(b.ledger, setup, embedded=True), batch_size=args.batch)
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(0, len(intents), 10_000):
                async with pool.acquire() as conn, conn.transaction():
                    await enqueue_mints(conn, intents[i:i + 10_000])
        t1 = time.perf_counter()
        total = await outbox.drain(max_seconds=3600)
        t2 = time.perf_counter()
        cpu = time.process_time() - c0
        counts = await outbox.counts()
        return {
            "path": "raw ledger+outbox" if args.raw else "minting service (MintBuilder) + outbox",
            "order": args.order,
            "meters": args.meters, "windows": args.windows, "intents": n_items,
            "grouping": ("by owner" if args.group_by_owner else "none") if args.raw else "per wallet (MintBuilder)",
            "transactions": total.transactions,
            "intents_per_tx": round(n_items / max(total.transactions, 1), 1),
            "enqueue_s": round(t1 - t0, 2), "outbox_s": round(t2 - t1, 2), "end_to_end_s": round(t2 - t0, 2),
            "confirmed": counts.get("confirmed", 0),
            "mints_per_s_end_to_end": round(counts.get("confirmed", 0) / (t2 - t0)),
            "mints_per_s_vs_baseline": ratio(counts.get("confirmed", 0) / (t2 - t0)),
            "central_process_cpu_s": round(cpu, 2),
            "mints_per_cpu_s_of_central_process": round(counts.get("confirmed", 0) / cpu),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "supply_matches": await supply(b) == expected,
            "ledger_log_mb": round(b.ledger_log.stat().st_size / 1e6, 1),
        }


async def run_from_readings(mode: str, meters: int, windows: int, batch: int, slot_ms: int) -> dict[str, object]:
    """Signed readings in PostgreSQL -> accounting -> minting service -> outbox -> confirmed (``--from-readings``)."""
    async with bench_env(slot_ms) as b:
        pool = b.pool
        await seed(pool, meters, windows)
        if mode == "backlog":  # every reading there at once (steady mode reveals them round by round, timed)
            await pool.execute("INSERT INTO reading_rows SELECT * FROM readings_all")
        outbox = mint_outbox(pool, platform_from_setup(b.ledger, b.setup, embedded=True), batch_size=batch)
        store = PgAccountingStore(pool)
        accounting_s = mint_s = 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        if mode == "backlog":
            t = time.perf_counter()
            final = await AccountingService(store, batch_meters=meters).settle_due()
            accounting_s += time.perf_counter() - t
            t = time.perf_counter()
            totals = await outbox.drain(max_seconds=3600)
            mint_s += time.perf_counter() - t
            transactions = totals.transactions
        else:
            final = transactions = 0
            for k in range(windows + 1):  # readings revealed round by round
                async with pool.acquire() as conn:
                    await conn.execute(
                        "INSERT INTO reading_rows SELECT * FROM readings_all WHERE timestamp_ms = $1", T0 + k * W
                    )
                t = time.perf_counter()
                final += await AccountingService(store, batch_meters=meters).settle_due()
                accounting_s += time.perf_counter() - t
                t = time.perf_counter()
                transactions += (await outbox.drain(max_seconds=3600)).transactions
                mint_s += time.perf_counter() - t
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        confirmed = int(await pool.fetchval("SELECT count(*) FROM chain_intent WHERE state = 'confirmed'"))
        return {
            "path": "readings -> accounting -> minting service + outbox",
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
            "mints_per_s_vs_baseline": ratio(confirmed / elapsed),
            "central_process_cpu_s": round(cpu, 2),
            "supply_equals_db_wh": await supply(b) == await minted_wh(pool),
            "load_average_1min": round(os.getloadavg()[0], 1),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meters", type=int, default=10_000)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--batch", type=int, default=None,
                   help="intents claimed per outbox round (default 2000; 4000 with --from-readings)")
    p.add_argument("--slot-ms", type=int, default=400)
    p.add_argument("--raw", action="store_true", help="ledger + outbox only, minimal builder")
    p.add_argument("--order", choices=["window-major", "meter-major"], default="window-major",
                   help="enqueue order: window-major (steady state, one window per meter per batch) or meter-major "
                        "(a backlog: the builder merges a wallet's windows into one mint)")
    p.add_argument("--group-by-owner", action="store_true", help="with --raw: one unit per owner")
    p.add_argument("--from-readings", action="store_true",
                   help="start from signed readings in PostgreSQL and run accounting too")
    p.add_argument("--mode", choices=("backlog", "steady", "both"), default="both",
                   help="with --from-readings: windows final all at once, one at a time, or both runs")
    args = p.parse_args()
    print_baseline("bench/mint.py")
    if args.from_readings and args.raw:
        p.error("--raw and --from-readings are different paths; choose one")
    if args.from_readings:
        batch = 4000 if args.batch is None else args.batch
        modes = ("backlog", "steady") if args.mode == "both" else (args.mode,)
        for mode in modes:
            print(json.dumps(asyncio.run(run_from_readings(mode, args.meters, args.windows, batch, args.slot_ms)),
                             indent=2))
    else:
        args.batch = 2000 if args.batch is None else args.batch
        print(json.dumps(asyncio.run(run_intents(args)), indent=2))


if __name__ == "__main__":
    main()
