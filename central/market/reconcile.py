"""Reconciliation (docs/decisions/0008-escrow-uniform-price-auction.md invariant): for every user and mint, on-chain
escrow balance = available + locked.

Escrow rows with something in flight (a deposit/withdrawal ``submitted``, or a trade whose settlement intent
is submitted, or confirmed but not yet applied) are reported as pending, not compared: their chain side may have
moved before the database's. Callers that want a full comparison resolve in-flight work first
(``Escrow.resolve_open``, ``Settler.settle_once``).
The gauge ``gtx_market_escrow_mismatches`` exports the number of mismatches found by the last run (must be 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from prometheus_client import Gauge
from solders.pubkey import Pubkey

from central.ledger.port import Ledger
from central.ledger.tokens import parse_token_account
from central.market.plan import SETTLEMENT_KIND

ESCROW_MISMATCHES = Gauge(
    "gtx_market_escrow_mismatches",
    "Escrow accounts whose on-chain balance differs from available + locked (last check).",
)
ESCROW_PENDING = Gauge("gtx_market_escrow_pending", "Escrow accounts skipped by the last check (work in flight).")


@dataclass(frozen=True)
class Mismatch:
    account: int
    asset: str
    address: str
    on_chain: int
    available: int
    locked: int


@dataclass(frozen=True)
class ReconcileReport:
    checked: int
    pending: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


async def reconcile(pool: asyncpg.Pool, ledger: Ledger) -> ReconcileReport:
    """Compare every escrow row; a row that differs is read again once (both sides) before it counts, so work that
    lands between the database read and the chain read is not reported."""
    first = await _check(pool, ledger, None)
    if first.ok:
        return _export(first)
    again = await _check(pool, ledger, {(m.account, m.asset) for m in first.mismatches})
    return _export(ReconcileReport(first.checked, first.pending, again.mismatches))


def _export(report: ReconcileReport) -> ReconcileReport:
    ESCROW_MISMATCHES.set(len(report.mismatches))
    ESCROW_PENDING.set(report.pending)
    return report


async def _check(pool: asyncpg.Pool, ledger: Ledger, only: set[tuple[int, str]] | None) -> ReconcileReport:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        rows = await conn.fetch(
            "SELECT account, asset, address, available, locked FROM escrow_balances ORDER BY account, asset"
        )
        busy = await conn.fetch(
            "SELECT account, asset FROM escrow_transfers WHERE status = 'submitted' "
            "UNION SELECT x.account, x.asset FROM trades t CROSS JOIN LATERAL "
            "(SELECT c.state FROM chain_intent c WHERE c.kind = $1 AND c.key = 'trade:' || t.id) i "
            "CROSS JOIN LATERAL (VALUES (t.buyer, 'quote'), (t.seller, 'energy')) AS x(account, asset) "
            "WHERE t.status = 'pending' AND i.state IN ('submitted', 'confirmed')",
            SETTLEMENT_KIND,
        )
    in_flight = {(r["account"], r["asset"]) for r in busy}
    rows = [r for r in rows if only is None or (r["account"], r["asset"]) in only]
    check = [r for r in rows if (r["account"], r["asset"]) not in in_flight]
    accounts = await ledger.get_multiple_accounts([Pubkey.from_string(r["address"]) for r in check])
    mismatches = []
    for r, acc in zip(check, accounts, strict=True):
        info = parse_token_account(acc) if acc is not None else None
        on_chain = info.amount if info is not None else 0
        if on_chain != r["available"] + r["locked"]:
            mismatches.append(Mismatch(r["account"], r["asset"], r["address"], on_chain, r["available"], r["locked"]))
    return ReconcileReport(len(check), len(rows) - len(check), mismatches)
