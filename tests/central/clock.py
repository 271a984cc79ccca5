"""A settable clock for central's services under test (they take ``clock: Callable[[], datetime]``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Answers ``now`` (``T0`` unless told) until moved on with ``advance``."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        """Move on by a ``timedelta(**kw)``."""
        self.now += timedelta(**kw)
