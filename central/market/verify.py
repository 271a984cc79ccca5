"""Recompute an epoch from its published order set (``GET /api/v1/market/epochs/{start}/orders``): anyone can check
the order-set hash and the exact trades the platform settled, with nothing but this module and numpy.

    python -m central.market.verify https://host/api/v1/market/epochs/2026-01-05T12:00:00+00:00
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from central.market.clearing import ClearingResult, OrderBook, clear


def recompute(orders: Sequence[Mapping[str, Any]], fee_bps: int) -> ClearingResult:
    """Clear the published orders (``order_id, account, side, qty, price`` each) again."""
    return clear(
        OrderBook.from_arrays(
            order_id=[o["order_id"] for o in orders],
            user=[o["account"] for o in orders],
            side=[o["side"] for o in orders],
            qty=[o["qty"] for o in orders],
            price=[o["price"] for o in orders],
        ),
        fee_bps,
    )


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - thin CLI around recompute
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].startswith(("http://", "https://")):
        print("usage: python -m central.market.verify <epoch URL>", file=sys.stderr)
        return 2
    url = args[0].rstrip("/")
    with urllib.request.urlopen(url) as r:  # noqa: S310 - the user names the URL
        epoch = json.load(r)
    with urllib.request.urlopen(url + "/orders") as r:  # noqa: S310
        published = json.load(r)
    result = recompute(published["orders"], epoch["fee_bps"])
    ok = result.order_set_hash.hex() == epoch["order_set_hash"] and result.price == epoch["price"]
    ok = ok and result.volume == epoch["volume"] and len(result.trades()) == epoch["trade_count"]
    print(
        json.dumps(
            {
                "ok": ok,
                "order_set_hash": result.order_set_hash.hex(),
                "price": result.price,
                "volume": result.volume,
                "trades": len(result.trades()),
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
