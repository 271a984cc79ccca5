"""``gridtokenx-central users create``: bootstrap accounts (the first admin) from the command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from central.config import CentralConfig
from central.db import create_pool, migrate_dsn
from central.errors import CentralError
from central.http.auth import TokenCodec
from central.identity.errors import IdentityError
from central.identity.mailer import build_mailer
from central.identity.postgres import PostgresAccountStore
from central.identity.users import AccountService
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
