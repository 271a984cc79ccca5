"""Defects found in review (each test failed before its fix)."""

from __future__ import annotations

import pytest

from central.certificates.errors import CertificateStateError
from tests.central.certificates.pg_world import HOUR, T0, T0_MS, World

pytestmark = pytest.mark.usefixtures("world")


async def test_certificate_goes_to_the_owner_of_the_production_not_the_meters_new_owner(world: World) -> None:
    """The prosumer produced the first hour, then released the meter and the consumer claimed it: a certificate
    for that hour must go to the prosumer's wallet, never the consumer's."""
    await world.pool.execute("UPDATE meters SET owner_id = $2 WHERE id = $1", world.site.meter_id, world.consumer)
    await world.site.produce(T0_MS + 60 * 60_000, 30, 10, first_export=10_600)  # the consumer's production
    quarter = HOUR // 4
    with pytest.raises(CertificateStateError):  # a period spanning both owners
        await world.service.issue(
            actor_id=world.authority, meter_id=world.site.meter_id,  # type: ignore[arg-type]
            period_start=T0 + 3 * quarter, period_end=T0 + 5 * quarter,
        )  # fmt: skip
    record = await world.service.issue(
        actor_id=world.authority, meter_id=world.site.meter_id, period_start=T0, period_end=T0 + HOUR,  # type: ignore[arg-type]
    )  # fmt: skip
    assert record.owner_id == world.prosumer
    assert record.owner_wallet == str(world.prosumer_wallet.pubkey())
    mine = await world.service.issue(
        actor_id=world.authority, meter_id=world.site.meter_id,  # type: ignore[arg-type]
        period_start=T0 + HOUR, period_end=T0 + HOUR + 2 * quarter,
    )  # fmt: skip
    assert mine.owner_id == world.consumer
    assert mine.owner_wallet == str(world.consumer_wallet.pubkey())
