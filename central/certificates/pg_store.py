"""PostgreSQL adapters of the certificates ports (tables of migration 0060; meters, wallets and energy_windows are
read as their owners define them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from central.certificates.errors import (
    AlreadyCertifiedError,
    CertificateNotFoundError,
    InsufficientGenerationError,
)
from central.certificates.instructions import Retirement
from central.certificates.models import (
    CertificateRecord,
    Holding,
    MeterInfo,
    RequestKind,
    Status,
    TxRequest,
    WindowExport,
)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class PgGeneration:
    """Final settlement windows from accounting's ``energy_windows``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def final_windows(self, meter_id: UUID, start: datetime, end: datetime) -> list[WindowExport]:
        rows = await self.pool.fetch(
            "SELECT window_start_ms, window_end_ms, export_wh, merkle_root, owner_id FROM energy_windows "
            "WHERE meter_id = $1 AND window_start_ms >= $2 AND window_end_ms <= $3 ORDER BY window_start_ms",
            meter_id,
            _ms(start),
            _ms(end),
        )
        return [
            WindowExport(meter_id, _dt(r["window_start_ms"]), _dt(r["window_end_ms"]), r["export_wh"], r["merkle_root"],
                         r["owner_id"])
            for r in rows
        ]


class PgDirectory:
    """Meters (identity) and linked wallets (wallets)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def meter(self, meter_id: UUID) -> MeterInfo | None:
        row = await self.pool.fetchrow("SELECT id, serial, source, owner_id FROM meters WHERE id = $1", meter_id)
        return None if row is None else MeterInfo(row["id"], row["serial"], row["source"], row["owner_id"])

    async def wallet_of(self, user_id: UUID) -> str | None:
        value: str | None = await self.pool.fetchval("SELECT address FROM wallets WHERE user_id = $1", user_id)
        return value

    async def user_of_wallet(self, wallet: str) -> UUID | None:
        value: UUID | None = await self.pool.fetchval("SELECT user_id FROM wallets WHERE address = $1", wallet)
        return value


_RECORD_COLUMNS = (
    "id, mint, meter_id, meter_serial, owner_id, owner_wallet, period_start, period_end, energy_wh, energy_source, "
    "issuer, issued_at, expires_at, readings_root, status, retired_wh, issued_by, revoked_at, revoked_by, "
    "revocation_reason"
)


def _record(row: Any) -> CertificateRecord:
    values = dict(row)
    values["status"] = Status(values["status"])
    values["readings_root"] = bytes(values["readings_root"])
    return CertificateRecord(**values)


def _request(row: Any) -> TxRequest:
    retirement = None
    if row["kind"] == RequestKind.RETIRE:
        retirement = Retirement(row["beneficiary"], row["purpose"], row["consumption_start"], row["consumption_end"])
    return TxRequest(
        id=row["id"],
        certificate_id=row["certificate_id"],
        user_id=row["user_id"],
        kind=RequestKind(row["kind"]),
        wallet=row["wallet"],
        amount_wh=row["amount_wh"],
        message=bytes(row["message"]),
        last_valid_block_height=row["last_valid_block_height"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        to_wallet=row["to_wallet"],
        to_user_id=row["to_user_id"],
        retirement=retirement,
        signature=row["signature"],
        completed_at=row["completed_at"],
    )


class PgCertificateStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def reserve(self, record: CertificateRecord, windows: Sequence[WindowExport]) -> None:
        """One transaction: insert the certificate, then claim its windows *from energy_windows* (so the export
        figures are accounting's, read under the same snapshot) and check they add up to the certificate."""
        starts = [_ms(w.start) for w in windows]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"INSERT INTO certificates ({_RECORD_COLUMNS}) VALUES "  # noqa: S608 - fixed column list
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
                    record.id, record.mint, record.meter_id, record.meter_serial, record.owner_id,
                    record.owner_wallet, record.period_start, record.period_end, record.energy_wh,
                    record.energy_source, record.issuer, record.issued_at, record.expires_at, record.readings_root,
                    record.status.value, record.retired_wh, record.issued_by, record.revoked_at, record.revoked_by,
                    record.revocation_reason,
                )  # fmt: skip
                claimed = await conn.fetchval(
                    "WITH claimed AS ("
                    " INSERT INTO certificate_windows (meter_id, window_start_ms, certificate_id, export_wh)"
                    " SELECT meter_id, window_start_ms, $3, export_wh FROM energy_windows"
                    " WHERE meter_id = $1 AND window_start_ms = ANY($2::bigint[]) AND export_wh > 0"
                    " RETURNING export_wh) "
                    "SELECT coalesce(sum(export_wh), 0)::bigint FROM claimed",
                    record.meter_id,
                    starts,
                    record.id,
                )
                if claimed != record.energy_wh:
                    raise InsufficientGenerationError(
                        f"the windows hold {claimed} Wh of final export, the certificate says {record.energy_wh}"
                    )
                await conn.execute(
                    "INSERT INTO certificate_holdings (certificate_id, wallet, user_id, amount_wh) "
                    "VALUES ($1, $2, $3, $4)",
                    record.id,
                    record.owner_wallet,
                    record.owner_id,
                    record.energy_wh,
                )
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyCertifiedError("some of these windows are already covered by another certificate") from exc

    async def covered_windows(self, certificate_id: UUID) -> list[WindowExport]:
        rows = await self.pool.fetch(
            "SELECT e.meter_id, e.window_start_ms, e.window_end_ms, c.export_wh, e.merkle_root "
            "FROM certificate_windows c JOIN energy_windows e USING (meter_id, window_start_ms) "
            "WHERE c.certificate_id = $1 ORDER BY e.window_start_ms",
            certificate_id,
        )
        return [
            WindowExport(r["meter_id"], _dt(r["window_start_ms"]), _dt(r["window_end_ms"]), r["export_wh"],
                         bytes(r["merkle_root"]))
            for r in rows
        ]  # fmt: skip

    async def covered_wh(self, certificate_id: UUID) -> int:
        value: int = await self.pool.fetchval(
            "SELECT coalesce(sum(export_wh), 0)::bigint FROM certificate_windows WHERE certificate_id = $1",
            certificate_id,
        )
        return value

    async def _set(self, sql: str, *args: object) -> None:
        result = await self.pool.execute(sql, *args)
        if result.endswith(" 0"):
            raise CertificateNotFoundError(f"no certificate {args[0]}")

    async def mark_active(self, certificate_id: UUID) -> None:
        await self._set(
            "UPDATE certificates SET status = 'active' WHERE id = $1 AND status = 'issuing'", certificate_id
        )

    async def mark_revoked(self, certificate_id: UUID, *, by: UUID, reason: str, at: datetime) -> None:
        await self._set(
            "UPDATE certificates SET status = 'revoked', revoked_at = $4, revoked_by = $2, revocation_reason = $3 "
            "WHERE id = $1",
            certificate_id,
            by,
            reason,
            at,
        )

    async def mark_expired(self, certificate_id: UUID) -> None:
        await self._set(
            "UPDATE certificates SET status = 'expired' WHERE id = $1 AND status = 'active'", certificate_id
        )

    async def _one(self, column: Literal["id", "mint"], value: object, missing: str) -> CertificateRecord:
        row = await self.pool.fetchrow(
            f"SELECT {_RECORD_COLUMNS} FROM certificates WHERE {column} = $1",  # noqa: S608 - fixed column list
            value,
        )
        if row is None:
            raise CertificateNotFoundError(missing)
        return _record(row)

    async def get(self, certificate_id: UUID) -> CertificateRecord:
        return await self._one("id", certificate_id, f"no certificate {certificate_id}")

    async def get_by_mint(self, mint: str) -> CertificateRecord:
        return await self._one("mint", mint, f"no certificate with mint {mint}")

    async def list_all(self) -> list[CertificateRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM certificates ORDER BY issued_at, id"  # noqa: S608 - fixed column list
        )
        return [_record(r) for r in rows]

    async def list_for_user(self, user_id: UUID) -> list[CertificateRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM certificates c WHERE owner_id = $1 OR EXISTS ("  # noqa: S608
            " SELECT 1 FROM certificate_holdings h WHERE h.certificate_id = c.id AND h.user_id = $1"
            " AND h.amount_wh > 0) ORDER BY issued_at, id",
            user_id,
        )
        return [_record(r) for r in rows]

    async def due_for_expiry(self, now: datetime) -> list[CertificateRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM certificates "  # noqa: S608 - fixed column list
            "WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at",
            now,
        )
        return [_record(r) for r in rows]

    async def holdings(self, certificate_id: UUID) -> list[Holding]:
        rows = await self.pool.fetch(
            "SELECT certificate_id, wallet, user_id, amount_wh FROM certificate_holdings "
            "WHERE certificate_id = $1 ORDER BY wallet",
            certificate_id,
        )
        return [Holding(r["certificate_id"], r["wallet"], r["user_id"], r["amount_wh"]) for r in rows]

    async def save_request(self, request: TxRequest) -> None:
        r = request.retirement
        await self.pool.execute(
            "INSERT INTO certificate_requests (id, certificate_id, user_id, kind, wallet, amount_wh, message,"
            " last_valid_block_height, created_at, expires_at, to_wallet, to_user_id, beneficiary, purpose,"
            " consumption_start, consumption_end) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
            request.id, request.certificate_id, request.user_id, request.kind.value, request.wallet,
            request.amount_wh, request.message, request.last_valid_block_height, request.created_at,
            request.expires_at, request.to_wallet, request.to_user_id, r and r.beneficiary, r and r.purpose,
            r and r.consumption_start, r and r.consumption_end,
        )  # fmt: skip

    async def waiting_requests(self, user_id: UUID, now: datetime) -> int:
        return int(await self.pool.fetchval(
            "SELECT count(*) FROM certificate_requests WHERE user_id = $1 AND signature IS NULL AND expires_at > $2",
            user_id, now,
        ))

    async def get_request(self, request_id: UUID) -> TxRequest:
        row = await self.pool.fetchrow("SELECT * FROM certificate_requests WHERE id = $1", request_id)
        if row is None:
            raise CertificateNotFoundError(f"no transaction request {request_id}")
        return _request(row)

    async def complete_request(self, request: TxRequest, signature: str, at: datetime) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE certificate_requests SET signature = $2, completed_at = $3 "
                "WHERE id = $1 AND signature IS NULL RETURNING id",
                request.id,
                signature,
                at,
            )
            if done is None:
                return False
            # The chain accepted the transaction, so it happened. Should the recorded holding be smaller (activity
            # the platform did not co-sign), it stops at zero and validation reports the disagreement.
            await conn.execute(
                "UPDATE certificate_holdings SET amount_wh = greatest(amount_wh - $3, 0) "
                "WHERE certificate_id = $1 AND wallet = $2",
                request.certificate_id,
                request.wallet,
                request.amount_wh,
            )
            if request.kind is RequestKind.TRANSFER:
                await conn.execute(
                    "INSERT INTO certificate_holdings (certificate_id, wallet, user_id, amount_wh) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (certificate_id, wallet) "
                    "DO UPDATE SET amount_wh = certificate_holdings.amount_wh + excluded.amount_wh",
                    request.certificate_id,
                    request.to_wallet,
                    request.to_user_id,
                    request.amount_wh,
                )
            else:
                await conn.execute(
                    "UPDATE certificates SET retired_wh = retired_wh + $2 WHERE id = $1",
                    request.certificate_id,
                    request.amount_wh,
                )
            return True

    async def retirements(self, certificate_id: UUID) -> list[TxRequest]:
        rows = await self.pool.fetch(
            "SELECT * FROM certificate_requests WHERE certificate_id = $1 AND kind = 'retire' "
            "AND signature IS NOT NULL ORDER BY completed_at, id",
            certificate_id,
        )
        return [_request(r) for r in rows]
