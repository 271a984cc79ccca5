"""Test helper: feeding signed readings (see ``tests.central.gateway``) through verified ingest."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.record import Reading
from tests.central.gateway import Gateway


def exact(
    gw: Gateway, serial: str, timestamp_ms: int, export_wh: int, *, import_wh: int = 0, flags: int = 0
) -> Reading:
    """The gateway's next record with exactly these register values at that time (no power figure)."""
    return gw.read(serial, timestamp_ms=timestamp_ms, export_wh=export_wh, import_wh=import_wh, flags=flags,
                   power_w=None)


def ingest_service(pool: object, now_ms: int) -> IngestService:
    return IngestService(
        PgIngestStore(pool),  # type: ignore[arg-type]
        metrics=IngestMetrics.for_registry(CollectorRegistry()),
        clock_ms=lambda: now_ms,
    )


async def ingest(svc: IngestService, device_id: str, records: list[Reading]) -> Ack:
    ack = Ack.from_json((await svc.handle_readings(device_id, encode_batch(records))).to_json())
    assert not ack.rejected, ack
    return ack
