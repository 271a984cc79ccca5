"""Identity's services as pure rules over their store ports (``central.identity.port``): no SQL, no HTTP.

Meter ownership (docs/decisions/0006-ownership-proven-twice.md): an owner claims a meter with its serial and the
meter key issued by the utility. Outcomes: claimed, already owned by the caller (idempotent), wrong serial or key
(``InvalidMeterKeyError``), claimed by someone else (``MeterClaimedError``, only revealed to a caller who knows the
key), more than ``identity.claim_attempts_per_hour`` attempts by the user, or more than
``identity.claim_failures_per_serial_per_hour`` wrong keys on the serial by any account, in an hour
(``ClaimRateLimitedError`` with the wait). Every attempt — rate-limited ones included — is recorded (user, serial,
address, user agent, outcome, time). The store runs a user's (and a serial's) claims one at a time so concurrent
requests cannot slip past the limits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from central.config import IdentityConfig
from central.identity.errors import (
    ClaimRateLimitedError,
    IdentityError,
    InvalidMeterKeyError,
    MeterClaimedError,
    MeterNotOwnedError,
)
from central.identity.hashing import METER_KEY_COST, burn_check, check_secret
from central.identity.model import ClaimAttempt, OwnedMeter
from central.identity.port import MeterStore

log = logging.getLogger("central.identity.meters")
HOUR = timedelta(hours=1)
#: Serials, addresses and user agents are stored cut to these lengths.
SERIAL_MAX, ADDRESS_MAX, USER_AGENT_MAX = 64, 64, 512


def utc_now() -> datetime:
    return datetime.now(UTC)


def wait_s(oldest: datetime, window: timedelta, now: datetime) -> int:
    """Whole seconds (at least 1) until ``oldest`` leaves the window ending at ``now``."""
    return max(1, math.ceil((oldest + window - now).total_seconds()))


class MeterService:
    def __init__(self, store: MeterStore, config: IdentityConfig, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    async def claim(self, user_id: UUID, serial: str, meter_key: str, *, address: str, user_agent: str) -> OwnedMeter:
        key = serial[:SERIAL_MAX]
        per_user = self._config.claim_attempts_per_hour
        per_serial = self._config.claim_failures_per_serial_per_hour
        error: IdentityError | None = None
        async with self._store.claiming(user_id, key) as tx:
            recent = await tx.recent_attempts(user_id, HOUR, per_user)
            # per-serial limit on wrong keys, across all accounts (issue 10 D16): many accounts cannot share one
            # serial's guesses
            wrong_keys = await tx.recent_wrong_keys(key, HOUR, per_serial)
            if len(recent) >= per_user or len(wrong_keys) >= per_serial:
                outcome = "rate_limited"
                oldest = recent[-1] if len(recent) >= per_user else wrong_keys[-1]
                error = ClaimRateLimitedError("too many meter-claim attempts; try again later",
                                              wait_s(oldest, HOUR, self._clock()))
            else:
                meter = await tx.meter(serial)
                if meter is None:
                    await burn_check(meter_key, METER_KEY_COST)
                    ok = False
                else:
                    ok = await check_secret(meter_key, meter.key_hash)
                if not ok or meter is None:
                    outcome = "wrong_key"
                    error = InvalidMeterKeyError("unknown serial or wrong meter key")
                elif meter.owner_id is None:
                    outcome = "claimed"
                    await tx.take(meter.id, user_id)
                elif meter.owner_id == user_id:
                    outcome = "already_owned"
                else:
                    outcome = "claimed_by_other"
                    error = MeterClaimedError("this meter is already claimed by another account")
            await tx.record(user_id, key, address[:ADDRESS_MAX], user_agent[:USER_AGENT_MAX], outcome)
        log.info("meter claim attempt", extra={"user_id": str(user_id), "serial": key, "outcome": outcome})
        if error is not None:
            raise error
        owned = await self._store.owned(serial)
        assert owned is not None
        return owned

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        return await self._store.list_owned(user_id)

    async def release(self, user_id: UUID, serial: str) -> None:
        """Release the caller's meter (the ownership period ends; see ``MeterStore.release``)."""
        if not await self._store.release(user_id, serial):
            raise MeterNotOwnedError("you do not own a meter with this serial")
        log.info("meter claim released", extra={"user_id": str(user_id), "serial": serial})

    async def attempts(self, user_id: UUID | None, limit: int) -> list[ClaimAttempt]:
        return await self._store.attempts(user_id, limit)
