"""``gridtokenx-central users create``: bootstrap accounts (the first admin) from the command line;
``gridtokenx-central broker sync``: give the broker every registered gateway's access again (after its state was
lost)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from central.broker.dynsec import DynsecAccess
from central.config import CentralConfig
from central.db import create_pool, migrate_dsn
from central.errors import CentralError
from central.http.auth import TokenCodec
from central.identity.errors import IdentityError
from central.identity.gateways import DeviceService
from central.identity.mailer import build_mailer
from central.identity.postgres import PostgresAccountStore, PostgresDeviceStore
from central.identity.users import AccountService
from central.mqtt import PahoMqtt
from central.roles import Role


async def create_user(config: CentralConfig, email: str, role: Role, password: str) -> str:
    await migrate_dsn(config.database.dsn)
    pool = await create_pool(config.database)
    try:
        store, mailer = PostgresAccountStore(pool), build_mailer(config.mailer)
        accounts = AccountService(store, config.auth, config.identity, TokenCodec(config.auth), mailer)
        user = await accounts.create_user(email, password, role, verified=True)
        return str(user.id)
    finally:
        await pool.close()


def create_user_command(config: CentralConfig, *, email: str, role: str, password_file: str | None) -> int:
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CentralError(f"cannot read {password_file}: {exc.strerror}") from None
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        user_id = asyncio.run(create_user(config, email, Role(role), password))
    except IdentityError as exc:
        raise CentralError(str(exc)) from None
    print(f"created {role} {email.strip().lower()} ({user_id})")
    return 0


async def sync_broker(config: CentralConfig) -> tuple[int, int, int]:
    """Grant every registered, not revoked gateway its broker client (existing ones untouched), remove revoked ones'
    (``DeviceService.sync_broker_access``) through a MQTT link of central's own credential."""
    if not config.broker.dynsec or not config.mqtt.enabled:
        raise CentralError("broker sync needs [broker] dynsec = true and MQTT enabled")
    pool = await create_pool(config.database)
    mqtt = PahoMqtt(config.mqtt)
    access = DynsecAccess(mqtt, timeout_s=config.broker.command_timeout_s)
    access.subscribe()
    try:
        await mqtt.start()
        await mqtt.wait_connected(config.broker.command_timeout_s)
        devices = DeviceService(PostgresDeviceStore(pool), config.identity, None, broker=access)
        return await devices.sync_broker_access()
    finally:
        await mqtt.stop()
        await pool.close()


def sync_broker_command(config: CentralConfig) -> int:
    granted, revoked, missed = asyncio.run(sync_broker(config))
    print(f"broker access: {granted} gateway(s) granted or kept, {revoked} revoked gateway(s) removed, "
          f"{missed} not granted (no pairing code, or see the log)")
    return 0 if missed == 0 else 1
