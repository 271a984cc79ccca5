"""Readings: the owners' readings and energy API and the live WebSocket hub (started with the app)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from central.readings import routes
from central.services import Services
from central.wiring import Subsystem


@contextlib.asynccontextmanager
async def lifetime(services: Services) -> AsyncIterator[None]:
    hub = services.readings.hub
    await hub.start(services.pool)
    try:
        yield
    finally:
        await hub.stop()


SUBSYSTEM = Subsystem("readings", routes=(routes.routes,), lifetime=lifetime)
