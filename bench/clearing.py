"""Clearing benchmark: the numpy engine vs the loop reference on the same random books, and the zonal engine
(central/market/zonal.py) on the same books spread over a zone tree, in the same run.

    .venv/bin/python bench/clearing.py [--sizes 10000,100000,1000000] [--reference-max 1000000] [--repeat 3]
                                       [--zones 100]

Books: n orders, ids a random permutation (time priority), 1/2 buys, users drawn from n/10 accounts, quantities
1..50 kWh, prices 80..220 quote units/kWh around a crossing midpoint. Engine time includes hashing the order set.
The reference is run once per size up to --reference-max (above that it is skipped and the output says so).
Zonal: --zones zones (1 grid root, about a tenth substations, the rest feeders; 0 = skip), every order in a random
feeder; feeders' boundaries 5 units/kWh and 1 % loss, substations' 10 units/kWh, 0.5 % fee and 2 % loss; the utility
sells at 190 and buys at 110 everywhere. Its engine time (hashing included) is printed next to the single-zone time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "central" / "market")]

from baseline import print_baseline, ratio  # noqa: E402 - bench/ is the script directory
from market_reference import reference_clear  # noqa: E402

from central.market.clearing import OrderBook, clear  # noqa: E402
from central.market.zonal import clear_zonal  # noqa: E402
from central.market.zones import Boundary, Zone, ZoneParams  # noqa: E402


def random_book(n: int, seed: int) -> OrderBook:
    rng = np.random.default_rng(seed)
    side = rng.integers(0, 2, n)
    price = np.where(side == 0, rng.integers(80, 201, n), rng.integers(100, 221, n))
    return OrderBook.from_arrays(
        order_id=rng.permutation(n),
        user=rng.integers(0, max(n // 10, 2), n),
        side=side,
        qty=rng.integers(1, 50_001, n),
        price=price,
    )


def zone_tree(n: int) -> ZoneParams:
    """``n`` zones: the grid, ``max(1, n // 10)`` substations under it, the rest feeders spread over them."""
    subs = max(1, n // 10) if n > 2 else n - 1
    retail, feed_in = 190, 110
    zones = [Zone("grid", -1, Boundary(), retail, feed_in)]
    zones += [Zone(f"sub{i}", 0, Boundary(10, 50, 200), retail, feed_in) for i in range(subs)]
    zones += [Zone(f"feeder{i}", 1 + i % subs, Boundary(5, 0, 100), retail, feed_in) for i in range(n - 1 - subs)]
    return ZoneParams(tuple(zones))


def zonal_line(book: OrderBook, n_zones: int, single_best: float, repeat: int, seed: int) -> str:
    params = zone_tree(n_zones)
    leaves = np.array([i for i, z in enumerate(params.zones) if i not in {x.parent for x in params.zones}])
    zone = leaves[np.random.default_rng(seed).integers(0, leaves.size, len(book))]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = clear_zonal(book, zone, params, 100)
        times.append(time.perf_counter() - t0)
    best = min(times)
    local = int((r.trade_market == zone[np.maximum(r.trade_buy, r.trade_sell)]).sum() - r.is_utility.sum())
    utility = int(r.is_utility.sum())
    loss, fees = int(r.trade_loss.sum()) / 1000, int(r.trade_grid_fee.sum())
    return (
        f"{'':>9} {best:11.3f}s {sum(times) / len(times):11.3f}s  zonal, {n_zones} zones "
        f"({best / single_best:.2f}x the single zone): {r.trade_qty.size} trades ({local} within a feeder, "
        f"{utility} with the utility), delivered {r.volume / 1000:.1f} kWh, losses {loss:.1f} kWh, "
        f"grid fees {fees}  ({len(book) / best:,.0f} orders/s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--reference-max", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--zones", type=int, default=100)
    args = ap.parse_args()
    print_baseline("bench/clearing.py")
    print(
        f"{'orders':>9} {'engine best':>12} {'engine mean':>12} {'reference':>10} {'speed-up':>9} "
        f"{'trades':>8} {'volume kWh':>11} {'price':>6}  same result"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        book = random_book(n, seed=n)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = clear(book, 100)
            times.append(time.perf_counter() - t0)
        best, mean = min(times), sum(times) / len(times)
        if n <= args.reference_max:
            orders = book.orders()
            t0 = time.perf_counter()
            ref = reference_clear(orders, 100)
            t_ref = time.perf_counter() - t0
            same = (
                ref.price == r.price
                and ref.volume == r.volume
                and ref.trades == [(t.buy_order_id, t.sell_order_id, t.qty, t.value, t.fee) for t in r.trades()]
            )
            ref_s, speed, same_s = f"{t_ref:9.3f}s", f"{t_ref / best:8.1f}x", "yes" if same else "NO"
        else:
            ref_s, speed, same_s = "  skipped", "        -", f"(reference skipped above {args.reference_max})"
        print(
            f"{n:>9} {best:11.3f}s {mean:11.3f}s {ref_s:>10} {speed:>9} {r.trade_qty.size:>8} "
            f"{r.volume / 1000:>11.1f} {r.price!s:>6}  {same_s}  ({n / best:,.0f} orders/s = {ratio(n / best)})"
        )
        if args.zones:
            print(zonal_line(book, args.zones, best, args.repeat, seed=n + 1))
        if n <= args.reference_max and same_s != "yes":
            sys.exit("engine and reference disagree")


if __name__ == "__main__":
    main()
