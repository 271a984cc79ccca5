"""Storage ports of the certificates service and their in-memory fakes (for unit tests).

The PostgreSQL adapters (``pg_store``) are the real ones; the invariant both keep is that a (meter, window) is
covered by at most one certificate — in PostgreSQL a primary key, here a dict checked under a lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from central.certificates.errors import AlreadyCertifiedError, CertificateNotFoundError
from central.certificates.models import (
    CertificateRecord,
    Holding,
    MeterInfo,
    RequestKind,
    Status,
    TxRequest,
    WindowExport,
)


class GenerationSource(Protocol):
    async def final_windows(self, meter_id: UUID, start: datetime, end: datetime) -> list[WindowExport]:
        """The meter's final settlement windows lying inside [start, end), in time order."""
        ...


class Directory(Protocol):
    """Who owns what: meters and linked wallets."""

    async def meter(self, meter_id: UUID) -> MeterInfo | None: ...

    async def wallet_of(self, user_id: UUID) -> str | None: ...

    async def user_of_wallet(self, wallet: str) -> UUID | None: ...


class CertificateStore(Protocol):
    async def reserve(self, record: CertificateRecord, windows: Sequence[WindowExport]) -> None:
        """Insert the certificate (status issuing) and claim its windows atomically.
        Raises ``AlreadyCertifiedError`` if any window is already covered."""
        ...

    async def covered_wh(self, certificate_id: UUID) -> int:
        """Sum of the export of the windows this certificate holds."""
        ...

    async def covered_windows(self, certificate_id: UUID) -> list[WindowExport]: ...

    async def mark_active(self, certificate_id: UUID) -> None: ...

    async def mark_revoked(self, certificate_id: UUID, *, by: UUID, reason: str, at: datetime) -> None: ...

    async def mark_expired(self, certificate_id: UUID) -> None: ...

    async def get(self, certificate_id: UUID) -> CertificateRecord: ...

    async def get_by_mint(self, mint: str) -> CertificateRecord: ...

    async def list_all(self) -> list[CertificateRecord]: ...

    async def list_for_user(self, user_id: UUID) -> list[CertificateRecord]:
        """Certificates issued to, or (per the database) held by, the user."""
        ...

    async def due_for_expiry(self, now: datetime) -> list[CertificateRecord]: ...

    async def holdings(self, certificate_id: UUID) -> list[Holding]: ...

    async def save_request(self, request: TxRequest) -> None: ...

    async def waiting_requests(self, user_id: UUID, now: datetime) -> int:
        """The user's requests neither submitted nor expired at ``now`` (waiting for the wallet's signature)."""
        ...

    async def get_request(self, request_id: UUID) -> TxRequest: ...

    async def complete_request(self, request: TxRequest, signature: str, at: datetime) -> bool:
        """Mark the request done and apply its effect (move holdings, add retirement) in one step.
        Returns False, changing nothing, if it was already completed."""
        ...

    async def retirements(self, certificate_id: UUID) -> list[TxRequest]:
        """Completed retirements of the certificate, oldest first (the retirement register)."""
        ...


class MemoryGeneration:
    def __init__(self) -> None:
        self.windows: list[WindowExport] = []

    async def final_windows(self, meter_id: UUID, start: datetime, end: datetime) -> list[WindowExport]:
        found = [w for w in self.windows if w.meter_id == meter_id and w.start >= start and w.end <= end]
        return sorted(found, key=lambda w: w.start)


class MemoryDirectory:
    def __init__(self) -> None:
        self.meters: dict[UUID, MeterInfo] = {}
        self.wallets: dict[UUID, str] = {}

    async def meter(self, meter_id: UUID) -> MeterInfo | None:
        return self.meters.get(meter_id)

    async def wallet_of(self, user_id: UUID) -> str | None:
        return self.wallets.get(user_id)

    async def user_of_wallet(self, wallet: str) -> UUID | None:
        return next((u for u, w in self.wallets.items() if w == wallet), None)


class MemoryCertificateStore:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.records: dict[UUID, CertificateRecord] = {}
        self.covered: dict[tuple[UUID, datetime], tuple[UUID, WindowExport]] = {}
        self.holding: dict[tuple[UUID, str], Holding] = {}
        self.requests: dict[UUID, TxRequest] = {}

    async def reserve(self, record: CertificateRecord, windows: Sequence[WindowExport]) -> None:
        async with self._lock:
            taken = [w for w in windows if (w.meter_id, w.start) in self.covered]
            if taken:
                raise AlreadyCertifiedError(f"{len(taken)} window(s) already certified, first at {taken[0].start}")
            if record.id in self.records or any(r.mint == record.mint for r in self.records.values()):
                raise AlreadyCertifiedError("certificate exists")
            self.records[record.id] = record
            for w in windows:
                self.covered[(w.meter_id, w.start)] = (record.id, w)
            self.holding[(record.id, record.owner_wallet)] = Holding(
                record.id, record.owner_wallet, record.owner_id, record.energy_wh
            )

    async def covered_windows(self, certificate_id: UUID) -> list[WindowExport]:
        return sorted((w for cid, w in self.covered.values() if cid == certificate_id), key=lambda w: w.start)

    async def covered_wh(self, certificate_id: UUID) -> int:
        return sum(w.export_wh for w in await self.covered_windows(certificate_id))

    def _update(self, certificate_id: UUID, **changes: object) -> None:
        self.records[certificate_id] = replace(self.records[certificate_id], **changes)  # type: ignore[arg-type]

    async def mark_active(self, certificate_id: UUID) -> None:
        self._update(certificate_id, status=Status.ACTIVE)

    async def mark_revoked(self, certificate_id: UUID, *, by: UUID, reason: str, at: datetime) -> None:
        self._update(certificate_id, status=Status.REVOKED, revoked_at=at, revoked_by=by, revocation_reason=reason)

    async def mark_expired(self, certificate_id: UUID) -> None:
        self._update(certificate_id, status=Status.EXPIRED)

    async def get(self, certificate_id: UUID) -> CertificateRecord:
        try:
            return self.records[certificate_id]
        except KeyError:
            raise CertificateNotFoundError(f"no certificate {certificate_id}") from None

    async def get_by_mint(self, mint: str) -> CertificateRecord:
        for r in self.records.values():
            if r.mint == mint:
                return r
        raise CertificateNotFoundError(f"no certificate with mint {mint}")

    async def list_all(self) -> list[CertificateRecord]:
        return sorted(self.records.values(), key=lambda r: (r.issued_at, str(r.id)))

    async def list_for_user(self, user_id: UUID) -> list[CertificateRecord]:
        held = {h.certificate_id for h in self.holding.values() if h.user_id == user_id and h.amount_wh > 0}
        return [r for r in await self.list_all() if r.owner_id == user_id or r.id in held]

    async def due_for_expiry(self, now: datetime) -> list[CertificateRecord]:
        return [r for r in await self.list_all() if r.status is Status.ACTIVE and r.expired(now)]

    async def holdings(self, certificate_id: UUID) -> list[Holding]:
        return sorted((h for h in self.holding.values() if h.certificate_id == certificate_id), key=lambda h: h.wallet)

    async def save_request(self, request: TxRequest) -> None:
        self.requests[request.id] = request

    async def waiting_requests(self, user_id: UUID, now: datetime) -> int:
        return sum(
            1 for r in self.requests.values() if r.user_id == user_id and r.signature is None and r.expires_at > now
        )

    async def get_request(self, request_id: UUID) -> TxRequest:
        try:
            return self.requests[request_id]
        except KeyError:
            raise CertificateNotFoundError(f"no transaction request {request_id}") from None

    async def complete_request(self, request: TxRequest, signature: str, at: datetime) -> bool:
        async with self._lock:
            if self.requests[request.id].signature is not None:
                return False
            self._move(request.certificate_id, request.wallet, request.user_id, -request.amount_wh)
            if request.to_wallet is not None:
                self._move(request.certificate_id, request.to_wallet, request.to_user_id, request.amount_wh)
            else:
                record = self.records[request.certificate_id]
                self._update(request.certificate_id, retired_wh=record.retired_wh + request.amount_wh)
            self.requests[request.id] = replace(request, signature=signature, completed_at=at)
            return True

    async def retirements(self, certificate_id: UUID) -> list[TxRequest]:
        done = [
            r
            for r in self.requests.values()
            if r.certificate_id == certificate_id and r.kind is RequestKind.RETIRE and r.signature is not None
        ]
        return sorted(done, key=lambda r: (r.completed_at or r.created_at, str(r.id)))

    def _move(self, certificate_id: UUID, wallet: str, user_id: UUID | None, delta: int) -> None:
        key = (certificate_id, wallet)
        current = self.holding.get(key, Holding(certificate_id, wallet, user_id, 0))
        self.holding[key] = replace(current, amount_wh=max(current.amount_wh + delta, 0))
