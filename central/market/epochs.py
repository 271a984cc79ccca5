"""Epoch arithmetic (pure): fixed-length epochs aligned to UTC, and the order lifecycle rules that depend on time.

An epoch of length L seconds starts at every multiple of L seconds since 1970-01-01T00:00Z (L divides a day, so
epochs are aligned to UTC midnight too) and runs over [start, end). Its states: open (orders accepted while
now < end) → closed (the clearer took it) → cleared (trades recorded) → settled (every trade settled on chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from central.market.errors import MarketError

DAY_S = 86_400


class EpochStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CLEARED = "cleared"
    SETTLED = "settled"


@dataclass(frozen=True, slots=True)
class Epoch:
    start: datetime
    end: datetime

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class EpochClock:
    length_s: int = 900

    def __post_init__(self) -> None:
        if not 1 <= self.length_s <= DAY_S or DAY_S % self.length_s:
            raise MarketError(f"epoch length {self.length_s}s must divide a day (1..86400 s)")

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.length_s)

    def at(self, t: datetime) -> Epoch:
        """The epoch containing ``t`` (an aware datetime)."""
        if t.tzinfo is None:
            raise MarketError("epoch times must be timezone-aware")
        micros = (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        step = self.length_s * 1_000_000
        start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros - micros % step)
        return Epoch(start, start + self.length)

    def starting(self, start: datetime) -> Epoch:
        epoch = self.at(start)
        if epoch.start != start:
            raise MarketError(f"{start.isoformat()} is not an epoch boundary")
        return epoch

    def next(self, epoch: Epoch) -> Epoch:
        return Epoch(epoch.end, epoch.end + self.length)

    def last_ended(self, t: datetime) -> Epoch:
        """The latest epoch that ended by ``t`` (the one before the epoch containing ``t``)."""
        current = self.at(t)
        return Epoch(current.start - self.length, current.start)
