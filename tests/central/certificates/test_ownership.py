"""Certificates follow the accounting's attribution (``energy_windows.owner_id`` = the owner holding the meter at
the window's end): production of the previous owner whose readings arrive only after the meter changed hands is
still certified to the previous owner."""

from __future__ import annotations

import pytest

from central.config import IdentityConfig
from central.identity.claims import MeterService
from central.identity.hashing import hash_secret_sync
from central.identity.postgres import PostgresMeterStore
from tests.central.certificates.pg_world import HOUR, MINUTE_MS, T0, T0_MS, World

pytestmark = pytest.mark.usefixtures("world")


async def test_late_production_of_the_previous_owner_is_certified_to_them(world: World) -> None:
    pool, site = world.pool, world.site
    await pool.execute("UPDATE meters SET meter_key_hash = $2 WHERE id = $1", site.meter_id, hash_secret_sync("k", 4))
    meters = MeterService(PostgresMeterStore(pool), IdentityConfig())
    await meters.release(world.prosumer, site.serial)  # type: ignore[arg-type]
    await meters.claim(world.consumer, site.serial, "k", address="127.0.0.1", user_agent="pytest")  # type: ignore[arg-type]
    # the gateway was offline: the prosumer's second hour of production arrives after the consumer's claim
    await site.produce(T0_MS + 60 * MINUTE_MS, 60, 10, first_export=10_600)
    owners = await pool.fetch("SELECT DISTINCT owner_id FROM energy_windows WHERE meter_id = $1", site.meter_id)
    assert [r["owner_id"] for r in owners] == [world.prosumer]
    record = await world.service.issue(
        actor_id=world.authority, meter_id=site.meter_id, period_start=T0 + HOUR, period_end=T0 + 2 * HOUR,  # type: ignore[arg-type]
        expected_wh=600,
    )  # fmt: skip
    assert record.owner_id == world.prosumer
    assert record.owner_wallet == str(world.prosumer_wallet.pubkey())
