"""Clearing benchmark: the numpy engine vs the loop reference on the same random books.

    .venv/bin/python bench/clearing.py [--sizes 10000,100000,1000000] [--reference-max 1000000] [--repeat 3]

Books: n orders, ids a random permutation (time priority), 1/2 buys, users drawn from n/10 accounts, quantities
1..50 kWh, prices 80..220 quote units/kWh around a crossing midpoint. Engine time includes hashing the order set.
The reference is run once per size up to --reference-max (above that it is skipped and the output says so).
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--reference-max", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
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
        if n <= args.reference_max and same_s != "yes":
            sys.exit("engine and reference disagree")


if __name__ == "__main__":
    main()
