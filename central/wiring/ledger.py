"""Ledger: ``GET /api/v1/ledger`` and the ledger readiness check (the ledger itself is an adapter the app opens)."""

from __future__ import annotations

from collections.abc import Mapping

from central.errors import Unavailable
from central.http.context import ReadyCheck
from central.ledger import routes
from central.services import Services
from central.wiring import Subsystem


def ready_checks(services: Services) -> Mapping[str, ReadyCheck]:
    if isinstance(services.ledger, Unavailable):
        return {}
    return {"ledger": services.ledger.check_ready}


SUBSYSTEM = Subsystem("ledger", routes=(routes.routes,), ready_checks=ready_checks)
