"""The mint outbox port and its in-memory fake (the PostgreSQL adapter is ``pg_store``)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

from central.minting.errors import IntentNotFoundError, IntentNotRetryableError, MintingError
from central.minting.plan import MintIntent

Outcome = Literal["confirmed", "failed", "expired"]


@dataclass(frozen=True, slots=True)
class PlannedTx:
    """A signed mint transaction about to be sent, with the intents it settles."""

    signature: str
    last_valid_block_height: int
    raw: bytes
    memo: str
    root: bytes
    intents: tuple[MintIntent, ...]


@dataclass(frozen=True, slots=True)
class OpenTx:
    tx_id: int
    signature: str
    last_valid_block_height: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_id: int
    outcome: Outcome
    slot: int | None = None
    err: str | None = None


@dataclass(frozen=True, slots=True)
class MintRecord:
    """One (meter, window) mint as the owner and the admin view see it."""

    intent_id: int
    meter_id: uuid.UUID
    owner_id: uuid.UUID
    window_start_ms: int
    window_end_ms: int
    amount_wh: int
    #: pending | accrued (pending, owner has no wallet) | submitted | confirmed | failed
    status: str
    wallet: str | None
    signature: str | None
    attempts: int
    last_error: str | None
    updated_at: datetime


class StaleIntentsError(MintingError):
    """Some intents were no longer pending when a submission was recorded (another submitter): nothing written."""


class MintStore(Protocol):
    async def open_txs(self) -> list[OpenTx]:
        """Transactions recorded as submitted and not yet settled (reconciled before anything new is sent)."""
        ...

    async def settle(self, results: Sequence[TxResult], max_attempts: int) -> None:
        """confirmed: its intents are minted. failed (landed with an error, no effect) or expired (can never land):
        its intents return to pending, or become failed after ``max_attempts``."""
        ...

    async def pending(self, limit: int) -> list[MintIntent]:
        """Pending intents whose owner has a linked wallet (wallet filled in), grouped by owner, oldest first."""
        ...

    async def record_submission(self, txs: Sequence[PlannedTx]) -> list[int]:
        """Write-ahead, atomically: the transactions (signature, last valid height, raw bytes) and their intents as
        submitted. Returns the tx ids. Raises ``StaleIntentsError`` if an intent is no longer pending."""
        ...

    async def mints_of(self, owner_id: uuid.UUID, limit: int, before_id: int | None) -> list[MintRecord]: ...

    async def problems(self, stuck_before: datetime, limit: int) -> list[MintRecord]:
        """Failed intents, and submitted ones whose transaction was recorded before ``stuck_before``."""
        ...

    async def retry(self, intent_id: int) -> MintRecord:
        """Failed -> pending (attempts reset). ``IntentNotRetryableError`` for any other state."""
        ...


@dataclass
class _Tx:
    planned: PlannedTx
    state: str = "submitted"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class _Row:
    intent: MintIntent
    state: str = "pending"
    wallet: str | None = None
    tx_id: int | None = None
    attempts: int = 0
    last_error: str | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class InMemoryMintStore:
    """The outbox in dicts, same semantics as PostgreSQL (unit tests)."""

    def __init__(self) -> None:
        self.wallets: dict[uuid.UUID, str] = {}
        self.rows: dict[int, _Row] = {}
        self.txs: dict[int, _Tx] = {}
        self._ids = itertools.count(1)

    def add_intent(self, intent: MintIntent) -> None:
        if any(
            r.intent.meter_id == intent.meter_id and r.intent.window_start_ms == intent.window_start_ms
            for r in self.rows.values()
        ):
            raise MintingError("one intent per (meter, window)")
        self.rows[intent.id] = _Row(intent)

    async def open_txs(self) -> list[OpenTx]:
        return [
            OpenTx(i, t.planned.signature, t.planned.last_valid_block_height, t.planned.raw)
            for i, t in self.txs.items()
            if t.state == "submitted"
        ]

    async def settle(self, results: Sequence[TxResult], max_attempts: int) -> None:
        for res in results:
            tx = self.txs[res.tx_id]
            if tx.state != "submitted":
                continue
            tx.state = res.outcome
            for row in self.rows.values():
                if row.tx_id != res.tx_id:
                    continue
                if res.outcome == "confirmed":
                    row.state = "confirmed"
                else:
                    row.attempts += 1
                    row.last_error = res.err or res.outcome
                    row.state = "failed" if row.attempts >= max_attempts else "pending"
                    row.tx_id = None if row.state == "pending" else row.tx_id

    async def pending(self, limit: int) -> list[MintIntent]:
        rows = [r for r in self.rows.values() if r.state == "pending" and r.intent.owner_id in self.wallets]
        rows.sort(key=lambda r: (r.intent.owner_id.bytes, r.intent.window_start_ms, r.intent.id))
        return [replace(r.intent, wallet=self.wallets[r.intent.owner_id]) for r in rows[:limit]]

    async def record_submission(self, txs: Sequence[PlannedTx]) -> list[int]:
        for t in txs:
            for i in t.intents:
                if self.rows[i.id].state != "pending":
                    raise StaleIntentsError(f"intent {i.id} is no longer pending")
        ids = []
        for t in txs:
            tx_id = next(self._ids)
            self.txs[tx_id] = _Tx(t)
            for i in t.intents:
                row = self.rows[i.id]
                row.state, row.wallet, row.tx_id = "submitted", i.wallet, tx_id
            ids.append(tx_id)
        return ids

    def _record(self, row: _Row) -> MintRecord:
        i = row.intent
        status = row.state
        if status == "pending" and i.owner_id not in self.wallets:
            status = "accrued"
        sig = self.txs[row.tx_id].planned.signature if row.tx_id is not None else None
        return MintRecord(
            i.id,
            i.meter_id,
            i.owner_id,
            i.window_start_ms,
            i.window_end_ms,
            i.amount_wh,
            status,
            row.wallet,
            sig,
            row.attempts,
            row.last_error,
            row.updated_at,
        )

    async def mints_of(self, owner_id: uuid.UUID, limit: int, before_id: int | None) -> list[MintRecord]:
        rows = [
            r
            for k, r in sorted(self.rows.items(), reverse=True)
            if r.intent.owner_id == owner_id and (before_id is None or k < before_id)
        ]
        return [self._record(r) for r in rows[:limit]]

    async def problems(self, stuck_before: datetime, limit: int) -> list[MintRecord]:
        out = [
            self._record(r)
            for r in self.rows.values()
            if r.state == "failed"
            or (r.state == "submitted" and r.tx_id is not None and self.txs[r.tx_id].created_at < stuck_before)
        ]
        return out[:limit]

    async def retry(self, intent_id: int) -> MintRecord:
        row = self.rows.get(intent_id)
        if row is None:
            raise IntentNotFoundError(f"no mint intent {intent_id}")
        if row.state != "failed":
            raise IntentNotRetryableError(f"intent {intent_id} is {row.state}, only failed intents can be retried")
        row.state, row.attempts, row.tx_id = "pending", 0, None
        return self._record(row)
