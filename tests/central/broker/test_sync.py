"""``gridtokenx-central broker sync`` (``central.identity.cli.sync_broker``) against PostgreSQL and the broker from
the shipped configuration whose state was lost: registered gateways get their access back, revoked ones lose theirs
(and are disconnected), a gateway without a pairing code is reported."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from central.broker.dynsec import DynsecAccess
from central.identity.cli import sync_broker
from protocol.broker import broker_password
from protocol.keys import DeviceKey
from protocol.signed import pairing_code
from tests.central.app_env import make_config
from tests.central.broker.mqtt_client import Client, wait_for
from tests.central.pg import add_device
from tests.locked_broker import LockedBroker


async def _gateway(pool: asyncpg.Pool, status: str, *, code: bool = True) -> tuple[DeviceKey, str]:
    key = DeviceKey.generate()
    await add_device(pool, key.device_id, key.public_key, status)
    if code:
        await pool.execute("UPDATE devices SET pairing_code = $2 WHERE device_id = $1", key.device_id,
                           pairing_code(key.seed))
    return key, broker_password(pairing_code(key.seed), key.device_id)


async def test_sync_gives_registered_gateways_their_access_back_and_removes_revoked_ones(
    pool: asyncpg.Pool, pg_dsn: str, locked: LockedBroker, access: DynsecAccess, tmp_path: Path
) -> None:
    verified, pw_verified = await _gateway(pool, "verified")
    pending, pw_pending = await _gateway(pool, "pending")
    revoked, pw_revoked = await _gateway(pool, "revoked")
    await _gateway(pool, "pending", code=False)  # registered before pairing codes: cannot be granted
    # the broker lost the gateways (a fresh state file) but still has one that was revoked behind central's back
    await access.grant(revoked.device_id, pw_revoked)
    still_in = Client(locked.port, revoked.device_id, pw_revoked).start_and_wait()
    config = make_config(
        pg_dsn, tmp_path, locked,
        mqtt={"username": locked.central_username, "password_file": str(locked.central_password_file())},
        broker={"dynsec": True, "command_timeout_s": 5},
    )
    try:
        assert still_in.connected
        assert await sync_broker(config) == (2, 1, 1)
        assert wait_for(lambda: still_in.disconnects, 5)
    finally:
        still_in.stop()
    for key, password, admitted in ((verified, pw_verified, True), (pending, pw_pending, True),
                                    (revoked, pw_revoked, False)):
        c = Client(locked.port, key.device_id, password).start_and_wait()
        try:
            assert c.connected is admitted, key.device_id
        finally:
            c.stop()
    assert await sync_broker(config) == (2, 1, 1)  # again: nothing changes, nobody is disturbed
