"""Meter ownership on PostgreSQL: the pure ``MeterService`` (``central.identity.claims``, where the claim rules are
documented) bound to its PostgreSQL store, as central wires it today."""

from __future__ import annotations

import asyncpg

from central.config import IdentityConfig
from central.identity.claims import MeterService
from central.identity.model import ClaimAttempt, OwnedMeter
from central.identity.postgres import PostgresMeterStore

__all__ = ["ClaimAttempt", "Meters", "OwnedMeter"]


class Meters(MeterService):
    def __init__(self, pool: asyncpg.Pool, config: IdentityConfig) -> None:
        super().__init__(PostgresMeterStore(pool), config)
