"""Settlement benchmark: trades settled per second end to end on the embedded ledger (in-memory LiteSVM)
with real PostgreSQL.

    .venv/bin/python bench/settlement.py [--traders 200] [--orders-per-trader 30] [--dsn postgresql://...]

Set-up (not timed): a scratch database, mints, ``--traders`` sellers and buyers with deposits, orders placed so
that one epoch clears into thousands of trades. Timed: the clearing of that epoch, and the settler settling every
trade (destination ATAs are created first, outside the timing, as they would exist for returning users). Each
settlement transaction carries as many whole trades (3 transfers + memo) as fit in 1232 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "central" / "market")]

from baseline import print_baseline, ratio  # noqa: E402 - bench/ is the script directory
from market_fixtures import Market, make_market  # noqa: E402

from central.db.migrations import migrate_dsn  # noqa: E402
from central.market.settler import Settler  # noqa: E402
from central.market.tables import LookupTables  # noqa: E402
from tests.central.pg import open_pool  # noqa: E402


async def run(dsn: str, traders: int, per_trader: int, tables: bool) -> None:
    await migrate_dsn(dsn)
    pool = await open_pool(dsn, max_size=8)
    try:
        async for m in make_market(pool, epoch_s=900, slot_ms=20):
            await bench(m, traders, per_trader, tables)
    finally:
        await pool.close()


async def setup(m: Market, traders: int, per_trader: int) -> None:
    rng = random.Random(1)
    sellers = [await m.trader(energy=per_trader * 5000) for _ in range(traders)]
    buyers = [await m.trader(quote=per_trader * 5000 * 300) for _ in range(traders)]
    for uid, w in sellers:
        assert await m.deposit(uid, w, "energy", per_trader * 5000) == "confirmed"
    for uid, w in buyers:
        assert await m.deposit(uid, w, "quote", per_trader * 5000 * 300) == "confirmed"
    # Every trader's ATAs for both mints exist already (Market.trader creates them when funding the wallet).
    orders = [
        (uid, "sell", rng.randint(500, 5000), rng.randint(100, 200)) for uid, _ in sellers for _ in range(per_trader)
    ]
    orders += [
        (uid, "buy", rng.randint(500, 5000), rng.randint(150, 300)) for uid, _ in buyers for _ in range(per_trader)
    ]
    rng.shuffle(orders)
    sem = asyncio.Semaphore(4)

    async def place(o: tuple[uuid.UUID, str, int, int]) -> None:
        async with sem:
            await m.book.place(*o)

    await asyncio.gather(*(place(o) for o in orders))


async def bench(m: Market, traders: int, per_trader: int, tables: bool) -> None:
    t0 = time.perf_counter()
    await setup(m, traders, per_trader)
    print(f"set-up: {2 * traders} traders, {2 * traders * per_trader} orders in {time.perf_counter() - t0:.1f}s")
    m.clock.advance(900)
    t0 = time.perf_counter()
    [epoch] = await m.book.clear_due()
    t_clear = time.perf_counter() - t0
    settler = Settler(m.pool, m.platform, tables=LookupTables(m.pool, m.platform) if tables else None)
    if tables:  # returning users' addresses are in the market's lookup tables already: fill them outside the timing
        t0 = time.perf_counter()
        await settler.prepare_tables()
        print(f"lookup tables filled with this epoch's addresses in {time.perf_counter() - t0:.2f}s (not timed)")
    t0 = time.perf_counter()
    settled = await settler.settle_all()
    t_settle = time.perf_counter() - t0
    batches = await m.pool.fetchval("SELECT count(*) FROM chain_submission WHERE state = 'confirmed'")
    print(
        f"epoch: {epoch.order_count} orders, {epoch.trade_count} trades, {epoch.volume / 1000:.1f} kWh at "
        f"{epoch.price}; clearing (DB read + engine + DB write) {t_clear:.2f}s"
    )
    print(
        f"settled {settled} trades in {batches} transactions ({settled / max(batches, 1):.1f} trades/tx) in "
        f"{t_settle:.2f}s -> {settled / t_settle:,.0f} trades/s settled (target >= 2,000/s)"
    )
    print(f"end to end (clear + settle): {settled / (t_clear + t_settle):,.0f} trades/s")
    print(f"settled trades/s as a multiple of the same run's baseline: {ratio(settled / t_settle)}")
    pending = await m.pool.fetchval("SELECT count(*) FROM trades WHERE status = 'pending'")
    assert pending == 0, pending


def main() -> None:
    print_baseline("bench/settlement.py")
    ap = argparse.ArgumentParser()
    ap.add_argument("--traders", type=int, default=200)
    ap.add_argument("--orders-per-trader", type=int, default=30)
    ap.add_argument("--no-tables", action="store_true", help="settle without address lookup tables")
    ap.add_argument(
        "--dsn", default="", help="an empty database (default: create and drop a scratch one on postgres@127.0.0.1)"
    )
    args = ap.parse_args()
    dsn = args.dsn
    name = ""
    if not dsn:
        name = f"gtx_bench_{uuid.uuid4().hex[:12]}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)
        dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        asyncio.run(run(dsn, args.traders, args.orders_per_trader, not args.no_tables))
    finally:
        if name:
            with contextlib.suppress(Exception):
                subprocess.run(
                    [
                        "psql",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-qc",
                        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                    ],
                    check=True,
                )


if __name__ == "__main__":
    main()
