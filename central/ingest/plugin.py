"""Plugs verified ingest into the central app: MQTT subscriptions (shared readings and sync, status) on the process's
MQTT client, backed by PostgreSQL. Settings come from the ``[ingest]`` config table."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from central.app import MQTT, POOL, SIGNER, Registry
from central.ingest.metrics import IngestMetrics
from central.ingest.mqtt import IngestMqtt
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService


def install(registry: Registry) -> None:
    settings = registry.config.ingest
    if not registry.mqtt_enabled:
        return
    app = registry.app
    metrics = IngestMetrics.for_registry()
    service = IngestService(PgIngestStore(lambda: app[POOL]), metrics=metrics, max_future_ms=settings.max_future_ms,
                            max_age_ms=settings.max_age_ms)
    IngestMqtt(app[MQTT], service, metrics, signer=app[SIGNER]).register(settings)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        yield
        await service.close()  # after the group in flight; unacked batches are sent again by their devices

    registry.add_task(lifetime)
