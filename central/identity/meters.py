"""Meter ownership (docs/decisions/0006-ownership-proven-twice.md): an owner claims a meter with its serial and the
meter key issued by the utility.

Outcomes: claimed (200), already owned by the caller (200, idempotent), wrong serial or key (400), claimed by someone
else (409, only revealed to a caller who knows the key), more than ``identity.claim_attempts_per_hour`` attempts in an
hour (429 with Retry-After). Every attempt — rate-limited ones included — is written to ``meter_claim_attempts``
(user, serial, address, user agent, outcome, time). A user's attempts are serialised by an advisory lock so
concurrent requests cannot slip past the limit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from central.config import IdentityConfig
from central.identity.errors import (
    ClaimRateLimitedError,
    IdentityError,
    InvalidMeterKeyError,
    MeterClaimedError,
    MeterNotOwnedError,
)
from central.identity.hashing import METER_KEY_COST, burn_check, check_secret

log = logging.getLogger(__name__)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class OwnedMeter:
    id: UUID
    serial: str
    device_id: str
    device_status: str
    model: str
    protocol: str
    source: str | None
    claimed_at: datetime


_SELECT = (
    "SELECT m.id, m.serial, m.device_id, d.status AS device_status, m.model, m.protocol, m.source, m.claimed_at"
    " FROM meters m JOIN devices d ON d.device_id = m.device_id"
)


def _owned(r: asyncpg.Record) -> OwnedMeter:
    return OwnedMeter(r["id"], r["serial"], r["device_id"], r["device_status"], r["model"], r["protocol"],
                      r["source"], r["claimed_at"])


class Meters:
    def __init__(self, pool: asyncpg.Pool, config: IdentityConfig) -> None:
        self._pool = pool
        self._config = config

    async def claim(self, user_id: UUID, serial: str, meter_key: str, *, address: str, user_agent: str) -> OwnedMeter:
        error: IdentityError | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('meter-claim:' || $1::uuid::text, 0))",
                               user_id)
            recent = await conn.fetch(
                "SELECT at FROM meter_claim_attempts WHERE user_id = $1 AND outcome <> 'rate_limited'"
                " AND at > now() - interval '1 hour' ORDER BY at DESC LIMIT $2",
                user_id, self._config.claim_attempts_per_hour,
            )
            # per-serial limit on wrong keys, across all accounts (issue 10 D16): many accounts cannot share one
            # serial's guesses
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('meter-claim-serial:' || $1, 0))",
                               serial[:64])
            serial_failures = await conn.fetch(
                "SELECT at FROM meter_claim_attempts WHERE serial = $1 AND outcome = 'wrong_key'"
                " AND at > now() - interval '1 hour' ORDER BY at DESC LIMIT $2",
                serial[:64], self._config.claim_failures_per_serial_per_hour,
            )
            if len(recent) >= self._config.claim_attempts_per_hour:
                outcome = "rate_limited"
                wait = (recent[-1]["at"] + _HOUR - datetime.now(UTC)).total_seconds()
                error = ClaimRateLimitedError("too many meter-claim attempts; try again later", math.ceil(wait))
            elif len(serial_failures) >= self._config.claim_failures_per_serial_per_hour:
                outcome = "rate_limited"
                wait = (serial_failures[-1]["at"] + _HOUR - datetime.now(UTC)).total_seconds()
                error = ClaimRateLimitedError("too many meter-claim attempts; try again later", math.ceil(wait))
            else:
                row = await conn.fetchrow(
                    "SELECT id, meter_key_hash, owner_id FROM meters WHERE serial = $1 FOR UPDATE", serial
                )
                if row is None:
                    await burn_check(meter_key, METER_KEY_COST)
                    ok = False
                else:
                    ok = await check_secret(meter_key, row["meter_key_hash"])
                if not ok or row is None:
                    outcome = "wrong_key"
                    error = InvalidMeterKeyError("unknown serial or wrong meter key")
                elif row["owner_id"] is None:
                    outcome = "claimed"
                    # the period starts once the row is locked, never before the previous owner's release
                    at = await conn.fetchval(
                        "UPDATE meters SET owner_id = $2, claimed_at = greatest(clock_timestamp(), released_at)"
                        " WHERE id = $1 RETURNING claimed_at", row["id"], user_id,
                    )
                    # the ownership period accounting attributes windows by (central/accounting/ownership.py)
                    await conn.execute("INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at)"
                                       " VALUES ($1, $2, $3)", row["id"], user_id, at)
                elif row["owner_id"] == user_id:
                    outcome = "already_owned"
                else:
                    outcome = "claimed_by_other"
                    error = MeterClaimedError("this meter is already claimed by another account")
            await conn.execute(
                "INSERT INTO meter_claim_attempts (user_id, serial, address, user_agent, outcome)"
                " VALUES ($1, $2, $3, $4, $5)",
                user_id, serial[:64], address[:64], user_agent[:512], outcome,
            )
        log.info("meter claim attempt", extra={"user_id": str(user_id), "serial": serial[:64], "outcome": outcome})
        if error is not None:
            raise error
        row = await self._pool.fetchrow(_SELECT + " WHERE m.serial = $1", serial)
        assert row is not None
        return _owned(row)

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        rows = await self._pool.fetch(_SELECT + " WHERE m.owner_id = $1 ORDER BY m.serial", user_id)
        return [_owned(r) for r in rows]

    async def release(self, user_id: UUID, serial: str) -> None:
        """Release the caller's meter. The release instant (``meters.released_at`` and the end of the ownership
        period) is taken once the meter row is locked — after any accounting pass that was attributing windows to
        this owner has committed — and never before the end of the meter's last settled window, so windows already
        recorded for this owner always end within their period (``central.accounting.ownership``)."""
        async with self._pool.acquire() as conn, conn.transaction():
            meter_id = await conn.fetchval(
                "SELECT id FROM meters WHERE serial = $1 AND owner_id = $2 FOR UPDATE", serial, user_id
            )
            if meter_id is None:
                raise MeterNotOwnedError("you do not own a meter with this serial")
            at = await conn.fetchval(
                "SELECT greatest(clock_timestamp(), (SELECT 'epoch'::timestamptz + boundary_ms * interval '1 ms'"
                " FROM accounting_checkpoints WHERE meter_id = $1))", meter_id,
            )
            await conn.execute(
                "UPDATE meters SET owner_id = NULL, claimed_at = NULL, released_at = $2 WHERE id = $1", meter_id, at
            )
            closed = await conn.execute(
                "UPDATE meter_ownerships SET released_at = $2 WHERE meter_id = $1 AND released_at IS NULL",
                meter_id, at,
            )
            if closed == "UPDATE 0":  # owner set outside claim (seeded by SQL): record the period we know of
                await conn.execute(
                    "INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at, released_at)"
                    " VALUES ($1, $2, $3, $3)", meter_id, user_id, at,
                )
        log.info("meter claim released", extra={"user_id": str(user_id), "serial": serial})

    async def attempts(self, user_id: UUID | None, limit: int) -> list[asyncpg.Record]:
        return list(await self._pool.fetch(
            "SELECT * FROM meter_claim_attempts WHERE ($1::uuid IS NULL OR user_id = $1) ORDER BY id DESC LIMIT $2",
            user_id, limit,
        ))
