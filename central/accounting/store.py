"""The accounting store port (what the accounting service reads and writes) and its in-memory fake."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from central.accounting.errors import AccountingError
from central.accounting.ownership import OwnershipPeriod, instant, owner_at_end
from central.accounting.window import window_start
from central.accounting.window_energy import Checkpoint, ClosedWindows, MeterReading, Window, close_windows


@dataclass(frozen=True, slots=True)
class MeterAccount:
    """A meter that takes part in accounting (claimed by an owner, bound to a verified device). ``owner_id`` is the
    current owner; each window is recorded for the owner at its end (``central.accounting.ownership``)."""

    meter_id: uuid.UUID
    owner_id: uuid.UUID
    checkpoint: Checkpoint | None


@dataclass(frozen=True, slots=True)
class RecordedWindow:
    meter_id: uuid.UUID
    owner_id: uuid.UUID
    window: Window


class ConcurrentAccountingError(AccountingError):
    """Another accountant recorded (some of) the same windows first; nothing of this batch was written."""


class AccountingStore(Protocol):
    async def due_meters(self, window_ms: int, limit: int) -> list[MeterAccount]:
        """Meters that may have a newly final window: some reading at or after the end of their next window."""
        ...

    async def readings_after(
        self, accounts: Sequence[MeterAccount], window_ms: int, horizon_ms: int
    ) -> dict[uuid.UUID, list[MeterReading]]:
        """Each meter's readings ordered after its checkpoint's anchor (all of them without a checkpoint), limited
        to a *complete prefix*: those with a timestamp up to the first reading at or after ``start + horizon_ms``
        (``start`` = the checkpoint's boundary, or the start of the first reading's window), that reading and any
        with the same timestamp included. Settling such a prefix gives exactly the windows settling everything
        would give up to its last reading, so memory per pass is bounded and repeated passes catch up."""
        ...

    async def record(self, window_ms: int, results: Sequence[tuple[MeterAccount, ClosedWindows]]) -> None:
        """Atomically write the windows (each for the owner holding the meter at its end, read in the same
        transaction) and advance the checkpoints. Raises ``ConcurrentAccountingError`` (and
        writes nothing) when a window already exists or a checkpoint moved since it was read."""
        ...


@dataclass
class InMemoryAccountingStore:
    """Dict-backed store for unit tests: meters, their current owners and released ownership periods, readings,
    checkpoints and windows."""

    owners: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    released: dict[uuid.UUID, list[OwnershipPeriod]] = field(default_factory=dict)
    readings: dict[uuid.UUID, list[MeterReading]] = field(default_factory=dict)
    checkpoints: dict[uuid.UUID, Checkpoint] = field(default_factory=dict)
    windows: dict[tuple[uuid.UUID, int], RecordedWindow] = field(default_factory=dict)

    def release(self, meter_id: uuid.UUID, at_ms: int) -> None:
        """The current owner releases the meter at ``at_ms`` (claimed at the epoch for this fake)."""
        owner = self.owners.pop(meter_id)
        self.released.setdefault(meter_id, []).append(OwnershipPeriod(owner, instant(0), instant(at_ms)))

    def _periods(self, meter_id: uuid.UUID) -> list[OwnershipPeriod]:
        periods = list(self.released.get(meter_id, []))
        if meter_id in self.owners:
            periods.append(OwnershipPeriod(self.owners[meter_id], instant(0), None))
        return periods

    def add_reading(self, meter_id: uuid.UUID, reading: MeterReading) -> None:
        self.readings.setdefault(meter_id, []).append(reading)

    async def due_meters(self, window_ms: int, limit: int) -> list[MeterAccount]:
        due = []
        for meter_id, owner in self.owners.items():
            rs = self.readings.get(meter_id)
            if not rs:
                continue
            cp = self.checkpoints.get(meter_id)
            base = cp.boundary_ms if cp else window_start(min(r.timestamp_ms for r in rs), window_ms)
            if max(r.timestamp_ms for r in rs) >= base + window_ms:
                due.append(MeterAccount(meter_id, owner, cp))
        return due[:limit]

    async def readings_after(
        self, accounts: Sequence[MeterAccount], window_ms: int, horizon_ms: int
    ) -> dict[uuid.UUID, list[MeterReading]]:
        out: dict[uuid.UUID, list[MeterReading]] = {}
        for a in accounts:
            rs = self.readings.get(a.meter_id, [])
            if not rs:
                out[a.meter_id] = []
                continue
            cp = a.checkpoint
            start = cp.boundary_ms if cp else window_start(min(r.timestamp_ms for r in rs), window_ms)
            cutoff = start + horizon_ms
            bound = min((r.timestamp_ms for r in rs if r.timestamp_ms >= cutoff), default=cutoff)
            if cp is not None:
                rs = [r for r in rs if r.key > cp.anchor.key]
            out[a.meter_id] = sorted((r for r in rs if r.timestamp_ms <= bound), key=lambda r: r.key)
        return out

    async def record(self, window_ms: int, results: Sequence[tuple[MeterAccount, ClosedWindows]]) -> None:  # noqa: ARG002
        for account, s in results:
            if self.checkpoints.get(account.meter_id) != account.checkpoint:
                raise ConcurrentAccountingError(f"checkpoint of meter {account.meter_id} moved")
            for w in s.windows:
                if (account.meter_id, w.start_ms) in self.windows:
                    raise ConcurrentAccountingError(f"window {w.start_ms} of meter {account.meter_id} exists")
            periods = self._periods(account.meter_id)
            for w in s.windows:
                if owner_at_end(periods, w.end_ms) is None:
                    raise ConcurrentAccountingError(f"meter {account.meter_id} was released before {w.end_ms}")
        for account, s in results:
            periods = self._periods(account.meter_id)
            for w in s.windows:
                owner = owner_at_end(periods, w.end_ms)
                assert owner is not None
                self.windows[(account.meter_id, w.start_ms)] = RecordedWindow(account.meter_id, owner, w)
            if s.checkpoint is not None:
                self.checkpoints[account.meter_id] = s.checkpoint


def settle_accounts(
    accounts: Sequence[MeterAccount],
    readings: dict[uuid.UUID, list[MeterReading]],
    window_ms: int,
    max_windows: int | None = None,
) -> list[tuple[MeterAccount, ClosedWindows]]:
    """Pure step of one accounting pass: the meters whose readings closed new windows, at most ``max_windows`` windows
    in all (each result's checkpoint continues from its last window, so the next pass picks up the rest)."""
    out = []
    budget = max_windows
    for a in accounts:
        if budget is not None and budget <= 0:
            break
        s = close_windows(readings.get(a.meter_id, []), a.checkpoint, window_ms, budget)
        if s.windows:
            out.append((a, s))
            if budget is not None:
                budget -= len(s.windows)
    return out
