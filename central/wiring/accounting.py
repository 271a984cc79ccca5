"""Accounting: every ``minting.accounting_interval_s`` settle the meters with newly final windows (and enqueue their
mints). One accountant at a time across processes and nodes (a sticky session advisory lock on a connection of its
own: the leader keeps it until it stops or dies)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from central import locks
from central.db.leadership import SessionLock
from central.errors import Unavailable
from central.jobs import Job
from central.services import Services
from central.wiring import Subsystem

log = logging.getLogger(__name__)


def jobs(services: Services) -> Sequence[Job]:
    service = services.accounting
    if isinstance(service, Unavailable):
        return ()

    async def settle() -> None:
        total = await service.settle_due()
        if total:
            log.info("settlement windows final", extra={"windows": total})

    return [
        Job("accounting", services.config.minting.accounting_interval_s, settle,
            lock=SessionLock(services.config.database.dsn, locks.ACCOUNTANT,
                             services.config.database.server_settings())),
    ]


SUBSYSTEM = Subsystem("accounting", jobs=jobs)
