"""Per-user market reports (pure): what a user sold and bought over a period, at what prices, and what it cost —
platform fees, grid fees, losses and utility fallback — as JSON and CSV, from the user's trade lines.

Each line is one trade seen from the user's side. Quote is in base units, energy in Wh, prices per kWh. Money a line
moves on chain (``central.market.settler``): a sale pays the seller ``value - fee - grid_fee`` (``quote_in``); a
purchase costs the buyer ``value + grid_fee`` (``quote_out``) and delivers ``delivered`` Wh (``qty`` minus losses).
Totals count settled lines only (they are the ones the chain has seen: ``reconciled``); pending lines are listed and
counted apart.

Grid fees, losses and the utility come from zonal trades (docs/decisions/0017-zonal-clearing.md); a single-zone
trade has none (0, ``delivered = qty``, ``False``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ReportLine:
    trade_id: int
    epoch_start: datetime
    side: str  # 'buy' | 'sell', the user's side
    qty: int  # Wh the seller sent
    price: int  # quote base units per kWh
    value: int  # quote base units (qty * price // 1000)
    platform_fee: int  # the seller's platform fee (0 on the buy side)
    grid_fee: int  # this side's grid fee (0 on a single-zone trade)
    delivered: int  # Wh the buyer received (qty less the loss)
    utility: bool  # the counterparty is the utility (the outside option)
    status: str  # 'pending' | 'settled'
    signature: str | None

    @property
    def loss_wh(self) -> int:
        return self.qty - self.delivered if self.side == "buy" else 0

    @property
    def quote_in(self) -> int:
        return self.value - self.platform_fee - self.grid_fee if self.side == "sell" else 0

    @property
    def quote_out(self) -> int:
        return self.value + self.grid_fee if self.side == "buy" else 0


@dataclass(frozen=True, slots=True)
class ReportTotals:
    sold_wh: int
    bought_wh: int  # Wh received (after losses)
    sold_value: int
    bought_value: int
    avg_sell_price: int | None  # value-weighted, per kWh, floor
    avg_buy_price: int | None
    platform_fees: int
    grid_fees: int
    losses_wh: int
    utility_sold_wh: int
    utility_bought_wh: int
    quote_in: int  # quote received on chain
    quote_out: int  # quote paid on chain (from escrow)
    trades: int
    pending: int  # lines not settled yet (not in the totals)


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A line as reported (the derived columns spelled out)."""

    trade_id: int
    epoch_start: datetime
    side: str
    qty: int
    price: int
    value: int
    platform_fee: int
    grid_fee: int
    loss_wh: int
    utility: bool
    quote_in: int
    quote_out: int
    energy_in_wh: int
    energy_out_wh: int
    status: str
    signature: str | None


@dataclass(frozen=True, slots=True)
class Report:
    start: datetime
    end: datetime
    totals: ReportTotals
    lines: list[ReportRow]


def _avg(value: int, wh: int) -> int | None:
    return value * 1000 // wh if wh else None


def row(x: ReportLine) -> ReportRow:
    sell = x.side == "sell"
    return ReportRow(
        x.trade_id, x.epoch_start, x.side, x.qty, x.price, x.value, x.platform_fee, x.grid_fee, x.loss_wh,
        x.utility, x.quote_in, x.quote_out, 0 if sell else x.delivered, x.qty if sell else 0, x.status, x.signature,
    )


def report(start: datetime, end: datetime, lines: Sequence[ReportLine]) -> Report:
    done = [x for x in lines if x.status == "settled"]
    sells = [x for x in done if x.side == "sell"]
    buys = [x for x in done if x.side == "buy"]
    sold_wh, bought_wh = sum(x.qty for x in sells), sum(x.delivered for x in buys)
    sold_value, bought_value = sum(x.value for x in sells), sum(x.value for x in buys)
    totals = ReportTotals(
        sold_wh=sold_wh,
        bought_wh=bought_wh,
        sold_value=sold_value,
        bought_value=bought_value,
        avg_sell_price=_avg(sold_value, sold_wh),
        avg_buy_price=_avg(bought_value, sum(x.qty for x in buys)),
        platform_fees=sum(x.platform_fee for x in done),
        grid_fees=sum(x.grid_fee for x in done),
        losses_wh=sum(x.loss_wh for x in done),
        utility_sold_wh=sum(x.qty for x in sells if x.utility),
        utility_bought_wh=sum(x.delivered for x in buys if x.utility),
        quote_in=sum(x.quote_in for x in done),
        quote_out=sum(x.quote_out for x in done),
        trades=len(done),
        pending=len(lines) - len(done),
    )
    return Report(start, end, totals, [row(x) for x in lines])


CSV_COLUMNS = tuple(f.name for f in fields(ReportRow))


def to_csv(r: Report) -> str:
    """One row per trade line, then a ``total`` row (settled lines) with the same columns where they add up."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for x in r.lines:
        w.writerow([v.isoformat() if isinstance(v, datetime) else ("" if v is None else v)
                    for v in (getattr(x, c) for c in CSV_COLUMNS)])
    t = r.totals
    total = {
        "trade_id": "total", "epoch_start": f"{r.start.isoformat()}/{r.end.isoformat()}",
        "qty": t.sold_wh + sum(x.qty for x in r.lines if x.side == "buy" and x.status == "settled"),
        "value": t.sold_value + t.bought_value, "platform_fee": t.platform_fees, "grid_fee": t.grid_fees,
        "loss_wh": t.losses_wh, "quote_in": t.quote_in, "quote_out": t.quote_out, "energy_in_wh": t.bought_wh,
        "energy_out_wh": t.sold_wh, "status": f"{t.trades} settled, {t.pending} pending",
    }
    w.writerow([total.get(c, "") for c in CSV_COLUMNS])
    return out.getvalue()
