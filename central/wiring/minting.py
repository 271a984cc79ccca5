"""Minting: the mint routes and the chain outbox of kind ``energy-mint`` (claims with SKIP LOCKED, so every process
runs it). Needs the ledger."""

from __future__ import annotations

from collections.abc import Sequence

from central.errors import Unavailable
from central.jobs import Job
from central.minting import routes
from central.services import Services
from central.wiring import Subsystem

#: Wait between outbox rounds when nothing is pending (a busy outbox runs again at once).
IDLE_INTERVAL_S = 0.5


def jobs(services: Services) -> Sequence[Job]:
    outbox = services.minting.outbox
    if isinstance(outbox, Unavailable):
        return ()

    async def step() -> bool:
        return not (await outbox.step()).idle

    return [Job("minting", IDLE_INTERVAL_S, step)]


SUBSYSTEM = Subsystem("minting", routes=(routes.routes,), jobs=jobs)
