"""Reconciliation (docs/decisions/0008-escrow-uniform-price-auction.md invariant): for every user and mint, on-chain
escrow balance = available + locked.

Escrow rows with something in flight (a deposit/withdrawal ``submitted``, or a trade whose settlement intent
is submitted, or confirmed but not yet applied) are reported as pending, not compared: their chain side may have
moved before the database's. Callers that want a full comparison resolve in-flight work first
(``Escrow.resolve_open``, ``Settler.settle_once``).
The gauge ``gtx_market_escrow_mismatches`` exports the number of mismatches found by the last run (must be 0).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from prometheus_client import Gauge
from solders.pubkey import Pubkey

from central.ledger.platform import Platform
from central.ledger.port import Ledger
from central.ledger.tokens import parse_token_account
from central.market.model import EscrowRow
from central.market.postgres import escrow_snapshot

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


#: The escrow rows and the (account, asset) pairs with work in flight, read in one snapshot.
Snapshot = Callable[[], Awaitable[tuple[list[EscrowRow], set[tuple[int, str]]]]]


async def reconcile(pool: asyncpg.Pool, platform: Platform) -> ReconcileReport:
    """Compare every escrow row; a row that differs is read again once (both sides) before it counts, so work that
    lands between the database read and the chain read is not reported."""
    return await reconcile_with(lambda: escrow_snapshot(pool), platform.ledger)


async def reconcile_with(snapshot: Snapshot, ledger: Ledger) -> ReconcileReport:
    first = await _check(snapshot, ledger, None)
    if first.ok:
        return _export(first)
    again = await _check(snapshot, ledger, {(m.account, m.asset) for m in first.mismatches})
    return _export(ReconcileReport(first.checked, first.pending, again.mismatches))


def _export(report: ReconcileReport) -> ReconcileReport:
    ESCROW_MISMATCHES.set(len(report.mismatches))
    ESCROW_PENDING.set(report.pending)
    return report


async def _check(snapshot: Snapshot, ledger: Ledger, only: set[tuple[int, str]] | None) -> ReconcileReport:
    rows, in_flight = await snapshot()
    rows = [r for r in rows if only is None or (r.account, r.asset) in only]
    check = [r for r in rows if (r.account, r.asset) not in in_flight]
    accounts = await ledger.get_multiple_accounts([Pubkey.from_string(r.address) for r in check])
    on_chain = []
    for acc in accounts:
        info = parse_token_account(acc) if acc is not None else None
        on_chain.append(info.amount if info is not None else 0)
    return compare(check, on_chain, pending=len(rows) - len(check))


def compare(rows: Sequence[EscrowRow], on_chain: Sequence[int], *, pending: int = 0) -> ReconcileReport:
    """The invariant (pure): each row's on-chain amount equals its available + locked."""
    mismatches = [
        Mismatch(r.account, r.asset, r.address, amount, r.available, r.locked)
        for r, amount in zip(rows, on_chain, strict=True)
        if amount != r.available + r.locked
    ]
    return ReconcileReport(len(rows), pending, mismatches)
