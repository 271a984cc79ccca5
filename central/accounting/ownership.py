"""Who a accounting window belongs to when a meter changes owner (docs/decisions/0006-ownership-proven-twice.md,
docs/decisions/0007-exact-energy-accounting.md).

The rule: each (meter, window) belongs to the owner who held the meter at the window's END. Ownership periods are
recorded by ``MeterService.claim`` (opens a period at the claim time) and ``MeterService.release`` (closes it at the
release time) in ``meter_ownerships`` (migration 0032), in the same transaction as the change of ``meters.owner_id``.
A period holds the meter on the half-open interval ``(claimed_at, released_at]``, so a window that ends exactly when
its owner releases the meter is still that owner's: all of its energy was measured while they held it.

Windows whose end no period covers:

* before the first claim — energy measured before anyone claimed the meter accrues to the *first claimant*
  (docs/decisions/0006-ownership-proven-twice.md: accrued until there is an owner, never dropped);
* between a release and the next claim (nobody held the meter) — likewise accrues to the *next claimant*: the
  energy was measured, somebody must receive it exactly once, and the person who released the meter gave up the
  site. (Giving it to the releasing owner instead would mean minting to someone who may have closed their account.)

Both cases are one rule: the owner of the earliest period whose ``released_at`` is at or after the window end (an
open period counting as released at +infinity). A window that ends after the last release while nobody owns the
meter has no owner yet: it is not settled until the next claim (the accounting only settles claimed meters), and
then goes to that claimant. Late readings change nothing: attribution depends on the window end and the recorded
periods, never on when the window became final.

Consistency with windows already recorded: the accounting store reads the periods in its recording transaction
under a share lock on the meter rows; claim and release lock the row for update and take their instant only then,
and a release is never dated before the end of the meter's last settled window (a gateway clock running ahead can
finalise a window ending after "now"). So every recorded window lies within, or before, its owner's period, and
each (meter, window) is recorded once, for one owner — the per-meter invariant of
docs/decisions/0007-exact-energy-accounting.md is untouched (attribution never changes which windows exist or their
energy, only whose they are).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OwnershipPeriod:
    """One owner's hold on a meter; ``released_at`` is None while it lasts."""

    owner_id: uuid.UUID
    claimed_at: datetime
    released_at: datetime | None


def instant(timestamp_ms: int) -> datetime:
    """A millisecond Unix timestamp as an exact aware datetime (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def owner_at_end(periods: Sequence[OwnershipPeriod], window_end_ms: int) -> uuid.UUID | None:
    """The owner a window ending at ``window_end_ms`` belongs to (see the module rule), or None when no period —
    not even an open one — ends at or after it (the meter is unowned since before the window ended)."""
    end = instant(window_end_ms)
    best: OwnershipPeriod | None = None
    for p in periods:
        if p.released_at is not None and p.released_at < end:
            continue
        if best is None or _release_key(p) < _release_key(best):
            best = p
    return None if best is None else best.owner_id


def _release_key(p: OwnershipPeriod) -> tuple[int, datetime]:
    return (1, p.claimed_at) if p.released_at is None else (0, p.released_at)
