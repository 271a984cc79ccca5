"""Reading storage upkeep: every ``archive.interval_s`` the leader creates the reading partitions ahead of the clock
and archives (exports, checks, drops) those older than ``archive.after_days`` (``central.archive``). One leader at
a time across processes and nodes (session advisory lock on a connection of its own)."""

from __future__ import annotations

from collections.abc import Sequence

from central import locks
from central.db.leadership import SessionLock
from central.jobs import Job
from central.services import Services
from central.wiring import Subsystem


def jobs(services: Services) -> Sequence[Job]:
    settings = services.config.archive
    if not settings.enabled:
        return ()

    async def upkeep() -> None:
        await services.archive.service.run_once()

    return [
        Job("reading-archive", settings.interval_s, upkeep,
            lock=SessionLock(services.config.database.dsn, locks.READING_ARCHIVE,
                             services.config.database.server_settings())),
    ]


SUBSYSTEM = Subsystem("archive", jobs=jobs)
