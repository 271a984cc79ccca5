"""Certificates on PostgreSQL and the embedded ledger, backed by windows that real signed readings produced through
verified ingest and accounting."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest
from solders.pubkey import Pubkey

from central.accounting.merkle import merkle_root
from central.certificates.errors import (
    AlreadyCertifiedError,
    CertificateStateError,
    InsufficientGenerationError,
    TooManyWaitingError,
)
from central.certificates.instructions import Retirement
from central.certificates.models import Status
from central.certificates.service import MAX_WAITING_REQUESTS
from tests.central.certificates.pg_world import HOUR, T0, T0_MS, World
from tests.central.certificates.support import sign_and_submit


async def test_issue_within_generation_from_verified_readings(world: World) -> None:
    with pytest.raises(InsufficientGenerationError):  # more than was generated
        await world.service.issue(
            actor_id=world.authority, meter_id=world.site.meter_id, period_start=T0, period_end=T0 + HOUR,  # type: ignore[arg-type]
            expected_wh=601,
        )  # fmt: skip
    with pytest.raises(InsufficientGenerationError):  # the second hour is not final yet
        await world.service.issue(
            actor_id=world.authority, meter_id=world.site.meter_id, period_start=T0, period_end=T0 + 2 * HOUR,  # type: ignore[arg-type]
        )  # fmt: skip
    record = await world.service.issue(
        actor_id=world.authority, meter_id=world.site.meter_id, period_start=T0, period_end=T0 + HOUR,  # type: ignore[arg-type]
        expected_wh=600,
    )  # fmt: skip
    assert record.status is Status.ACTIVE
    assert record.energy_wh == 600
    assert record.owner_wallet == str(world.prosumer_wallet.pubkey())
    rows = await world.pool.fetch(
        "SELECT e.merkle_root FROM certificate_windows c JOIN energy_windows e USING (meter_id, window_start_ms) "
        "WHERE c.certificate_id = $1 ORDER BY window_start_ms",
        record.id,
    )
    assert len(rows) == 4
    assert record.readings_root == merkle_root([bytes(r["merkle_root"]) for r in rows])
    report = await world.validator.by_mint(record.mint)
    assert report.valid
    assert report.db_agrees, report.mismatches
    assert report.certified_wh == 600
    # Generation goes on; the next window is certifiable on its own (15-minute granularity).
    await world.site.produce(T0_MS + 60 * 60_000, 15, 20, first_export=10_600)
    small = await world.service.issue(
        actor_id=world.authority, meter_id=world.site.meter_id, period_start=T0 + HOUR,  # type: ignore[arg-type]
        period_end=T0 + HOUR + timedelta(minutes=15),
    )  # fmt: skip
    assert small.energy_wh == 300


async def test_concurrent_double_issue_refused_by_the_database(world: World) -> None:
    periods = [(T0, T0 + HOUR), (T0, T0 + HOUR), (T0 + timedelta(minutes=30), T0 + HOUR), (T0, T0 + HOUR / 2)]

    async def attempt(start: datetime, end: datetime) -> object:
        return await world.service.issue(
            actor_id=world.authority,
            meter_id=world.site.meter_id,
            period_start=start,
            period_end=end,  # type: ignore[arg-type]
        )

    results = await asyncio.gather(*(attempt(s, e) for s, e in periods), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, AlreadyCertifiedError) for r in losers), losers
    covered = await world.pool.fetchval("SELECT sum(export_wh) FROM certificate_windows")
    assert covered == sum(r.energy_wh for r in winners)  # type: ignore[attr-defined]
    assert covered <= 600
    assert await world.pool.fetchval("SELECT count(*) FROM certificates") == len(winners)
    # The guard is the database's own: a second claim on a covered window cannot be written at all.
    row = await world.pool.fetchrow("SELECT * FROM certificate_windows LIMIT 1")
    with pytest.raises(asyncpg.UniqueViolationError):
        await world.pool.execute(
            "INSERT INTO certificate_windows (meter_id, window_start_ms, certificate_id, export_wh) "
            "VALUES ($1, $2, $3, $4)",
            row["meter_id"], row["window_start_ms"], row["certificate_id"], row["export_wh"],
        )  # fmt: skip


async def test_transfer_retire_revoke_and_validation_on_postgres(world: World) -> None:
    record = await world.service.issue(
        actor_id=world.authority,
        meter_id=world.site.meter_id,
        period_start=T0,
        period_end=T0 + HOUR,  # type: ignore[arg-type]
    )
    prepared = await world.service.request_transfer(
        record.id,
        user_id=world.prosumer,
        to_user_id=world.consumer,
        amount_wh=250,  # type: ignore[arg-type]
    )
    await sign_and_submit(world.service, prepared, world.prosumer_wallet, world.prosumer)  # type: ignore[arg-type]
    retirement = Retirement("Household 7", "renewable electricity claim", T0, T0 + timedelta(days=30))
    prepared = await world.service.request_retirement(
        record.id,
        user_id=world.consumer,
        amount_wh=100,
        retirement=retirement,  # type: ignore[arg-type]
    )
    sig = await sign_and_submit(world.service, prepared, world.consumer_wallet, world.consumer)  # type: ignore[arg-type]
    row = await world.pool.fetchrow("SELECT * FROM certificate_requests WHERE signature = $1", sig)
    assert row["kind"] == "retire"
    assert row["beneficiary"] == "Household 7"
    mine = await world.service.list_certificates(user_id=world.consumer, is_admin=False)  # type: ignore[arg-type]
    assert [c.id for c in mine] == [record.id]
    report = await world.validator.by_id(record.id)
    assert report.valid
    assert report.db_agrees, report.mismatches
    assert report.supply_wh == 500
    assert report.retired_wh == 100

    # The database is changed behind the service's back: validation reports the disagreement.
    await world.pool.execute("UPDATE certificates SET retired_wh = 0 WHERE id = $1", record.id)
    report = await world.validator.by_id(record.id)
    assert not report.db_agrees
    assert any("retired" in m for m in report.mismatches)
    await world.pool.execute("UPDATE certificates SET retired_wh = 100 WHERE id = $1", record.id)

    revoked = await world.service.revoke(record.id, actor_id=world.authority, reason="audit: meter seal broken")  # type: ignore[arg-type]
    assert revoked.status is Status.REVOKED
    with pytest.raises(CertificateStateError):
        await world.service.request_transfer(
            record.id,
            user_id=world.consumer,
            to_user_id=world.prosumer,
            amount_wh=1,  # type: ignore[arg-type]
        )
    holdings = await world.chain.ops.holdings(
        Pubkey.from_string(record.mint), [world.prosumer_wallet.pubkey(), world.consumer_wallet.pubkey()]
    )
    assert len(holdings) == 2
    assert all(h.account.frozen for h in holdings)
    report = await world.validator.by_id(record.id)
    assert report.status == "revoked"
    assert report.db_agrees, report.mismatches


async def test_expiry_sweep_on_postgres(world: World) -> None:
    record = await world.service.issue(
        actor_id=world.authority,
        meter_id=world.site.meter_id,
        period_start=T0,
        period_end=T0 + HOUR,  # type: ignore[arg-type]
    )
    assert record.expires_at == (T0 + HOUR).replace(year=(T0 + HOUR).year + 1)
    assert await world.service.expire_due() == 0
    world.clock.now = record.expires_at
    assert await world.service.expire_due() == 1
    assert (await world.store.get(record.id)).status is Status.EXPIRED
    with pytest.raises(CertificateStateError):
        await world.service.request_retirement(
            record.id, user_id=world.prosumer, amount_wh=1,  # type: ignore[arg-type]
            retirement=Retirement("x", "y", T0, T0 + HOUR),
        )  # fmt: skip
    report = await world.validator.by_id(record.id)
    assert report.status == "expired"
    assert report.frozen_accounts == 1


async def test_waiting_requests_are_counted_on_postgres(world: World) -> None:
    """The cap on requests waiting for the wallet (MAX_WAITING_REQUESTS) counts the stored rows: unsigned and not
    expired ones of this user."""
    record = await world.service.issue(
        actor_id=world.authority, meter_id=world.site.meter_id, period_start=T0, period_end=T0 + HOUR,  # type: ignore[arg-type]
    )
    waiting = [
        await world.service.request_transfer(
            record.id, user_id=world.prosumer, to_user_id=world.consumer, amount_wh=1,  # type: ignore[arg-type]
        )
        for _ in range(MAX_WAITING_REQUESTS)
    ]
    with pytest.raises(TooManyWaitingError):
        await world.service.request_transfer(
            record.id, user_id=world.prosumer, to_user_id=world.consumer, amount_wh=1,  # type: ignore[arg-type]
        )
    await sign_and_submit(world.service, waiting[0], world.prosumer_wallet, world.prosumer)  # type: ignore[arg-type]
    assert await world.store.waiting_requests(world.prosumer, world.clock.now) == MAX_WAITING_REQUESTS - 1  # type: ignore[arg-type]
    assert await world.store.waiting_requests(world.prosumer, waiting[-1].request.expires_at) == 0  # type: ignore[arg-type]
