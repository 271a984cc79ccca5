"""Accounts on PostgreSQL: the pure ``AccountService`` (``central.identity.users``, where the rules are documented)
bound to its PostgreSQL store, as central wires it today."""

from __future__ import annotations

import asyncpg

from central.config import AuthConfig, IdentityConfig
from central.http.auth import TokenCodec
from central.identity.mail import Mailer
from central.identity.model import Session, User
from central.identity.postgres import PostgresAccountStore
from central.identity.users import MAILS_PER_HOUR, SELF_SERVICE_ROLES, AccountService, normalise_email

__all__ = ["MAILS_PER_HOUR", "SELF_SERVICE_ROLES", "Accounts", "Session", "User", "normalise_email"]


class Accounts(AccountService):
    def __init__(self, pool: asyncpg.Pool, auth: AuthConfig, identity: IdentityConfig, tokens: TokenCodec,
                 mailer: Mailer) -> None:
        super().__init__(PostgresAccountStore(pool), auth, identity, tokens, mailer)
