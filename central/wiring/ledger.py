"""Ledger: ``GET /api/v1/ledger``, the ledger readiness check, and (rpc backend with several providers) the
providers' health check (``central.ledger.failover``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from central.errors import Unavailable
from central.http.context import ReadyCheck
from central.jobs import Job
from central.ledger import routes
from central.ledger.failover import FailoverLedger
from central.services import Services
from central.wiring import Subsystem


def ready_checks(services: Services) -> Mapping[str, ReadyCheck]:
    if isinstance(services.ledger, Unavailable):
        return {}
    return {"ledger": services.ledger.check_ready}


def jobs(services: Services) -> Sequence[Job]:
    if isinstance(services.ledger, Unavailable) or not isinstance(services.ledger.ledger, FailoverLedger):
        return ()
    return [Job("ledger-rpc-health", services.ledger.config.rpc_health_interval_ms / 1000,
                services.ledger.ledger.check_health)]


SUBSYSTEM = Subsystem("ledger", routes=(routes.routes,), ready_checks=ready_checks, jobs=jobs)
