"""Certificates: routes and the expiry sweeper (resumes interrupted issuances, freezes expired certificates; one
process per round, through an advisory lock). Without a ledger the certificate routes answer 503."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from central import locks
from central.certificates import routes
from central.db.leadership import XactLock
from central.errors import Unavailable
from central.jobs import Job
from central.services import Services
from central.wiring import Subsystem

log = logging.getLogger(__name__)


def jobs(services: Services) -> Sequence[Job]:
    certs = services.certificates
    if isinstance(certs, Unavailable):
        return ()

    async def sweep() -> None:
        resumed = await certs.service.resume_issuing()
        expired = await certs.service.expire_due()
        if resumed or expired:
            log.info("certificate sweep", extra={"resumed": resumed, "expired": expired})

    interval = services.config.certificates.expiry_sweep_s
    return [
        Job("certificate-sweeper", interval, sweep, lock=XactLock(services.pool, locks.CERTIFICATE_SWEEP),
            initial_delay_s=interval),
    ]


SUBSYSTEM = Subsystem("certificates", routes=(routes.routes,), jobs=jobs)
