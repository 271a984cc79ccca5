"""Test helper: a gateway signing a hash chain of readings (protocol v1) and feeding them through verified ingest."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.keys import DeviceKey
from protocol.record import ZERO_HASH, Reading, sign_reading


@dataclass
class Gateway:
    key: DeviceKey = field(default_factory=DeviceKey.generate)
    seq: int = 0
    prev_hash: bytes = ZERO_HASH

    @property
    def device_id(self) -> str:
        return self.key.device_id

    def read(self, serial: str, timestamp_ms: int, *, export_wh: int, import_wh: int = 0, flags: int = 0) -> Reading:
        self.seq += 1
        rec = sign_reading(
            self.key,
            meter_serial=serial,
            seq=self.seq,
            timestamp_ms=timestamp_ms,
            import_wh=import_wh,
            export_wh=export_wh,
            power_w=None,
            flags=flags,
            prev_hash=self.prev_hash,
        )
        self.prev_hash = rec.hash()
        return rec


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
