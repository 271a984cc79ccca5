"""The stores identity's services need (implemented by ``central.identity.postgres`` and, for unit tests of the
rules, by ``central.identity.memory``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from central.identity.model import ClaimableMeter, ClaimAttempt, OwnedMeter


class ClaimTx(Protocol):
    """One meter claim's unit of work: everything in it commits together (or not at all)."""

    async def recent_attempts(self, user_id: UUID, within: timedelta, limit: int) -> list[datetime]:
        """When the user's attempts of the last ``within`` that were not rate-limited were made, newest first (at
        most ``limit``)."""
        ...

    async def recent_wrong_keys(self, serial: str, within: timedelta, limit: int) -> list[datetime]:
        """When wrong-key attempts on ``serial`` (by any account) of the last ``within`` were made, newest first."""
        ...

    async def meter(self, serial: str) -> ClaimableMeter | None:
        """The meter with this serial, locked until the end of the unit of work."""
        ...

    async def take(self, meter_id: UUID, user_id: UUID) -> None:
        """Make ``user_id`` the owner and open its ownership period (never before the previous owner's release)."""
        ...

    async def record(self, user_id: UUID, serial: str, address: str, user_agent: str, outcome: str) -> None:
        """Add an attempt to the audit trail (made now)."""
        ...


class MeterStore(Protocol):
    def claiming(self, user_id: UUID, serial: str) -> AbstractAsyncContextManager[ClaimTx]:
        """A unit of work for one claim; claims by the same user, and on the same serial, run one at a time."""
        ...

    async def owned(self, serial: str) -> OwnedMeter | None:
        """The meter with this serial, as its owner sees it."""
        ...

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        """The user's meters, by serial."""
        ...

    async def release(self, user_id: UUID, serial: str) -> bool:
        """End the user's ownership of the meter (``meters.released_at`` and the ownership period; never before the
        end of the meter's last settled window). False when the user owns no meter with this serial."""
        ...

    async def attempts(self, user_id: UUID | None, limit: int) -> list[ClaimAttempt]:
        """The claim audit trail, newest first (one user's, or everybody's)."""
        ...
