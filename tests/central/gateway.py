"""Test helper shared by the central tests: a simulated gateway that signs a hash chain of readings for its meters,
and verified ingest (the real service on PostgreSQL) to feed them through."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.keys import DeviceKey
from protocol.record import ZERO_HASH, Reading, ReadingFields, sign_reading

T0_MS = 1_790_000_000_000  # a fixed "now" for unit tests (2026-09)


@dataclass
class Gateway:
    key: DeviceKey = field(default_factory=DeviceKey.generate)
    seq: int = 0
    prev_hash: bytes = ZERO_HASH
    registers: dict[str, tuple[int, int]] = field(default_factory=dict)
    now_ms: int = T0_MS

    @property
    def device_id(self) -> str:
        return self.key.device_id

    def read(
        self,
        serial: str,
        *,
        import_step: int = 10,
        export_step: int = 5,
        import_wh: int | None = None,
        export_wh: int | None = None,
        timestamp_ms: int | None = None,
        flags: int = 0,
        prev_hash: bytes | None = None,
        seq: int | None = None,
        advance_ms: int = 1000,
        power_w: int | None = 250,
    ) -> Reading:
        """Sign the next record of the chain (fields overridable to build bad records) and advance the chain."""
        imp, exp = self.registers.get(serial, (1000, 0))
        imp = imp + import_step if import_wh is None else import_wh
        exp = exp + export_step if export_wh is None else export_wh
        self.now_ms += advance_ms
        rec = sign_reading(
            self.key,
            ReadingFields(
                meter_serial=serial,
                seq=self.seq + 1 if seq is None else seq,
                timestamp_ms=self.now_ms if timestamp_ms is None else timestamp_ms,
                import_wh=imp,
                export_wh=exp,
                power_w=power_w,
                flags=flags,
                prev_hash=self.prev_hash if prev_hash is None else prev_hash,
            ),
        )
        self.seq = rec.seq
        self.prev_hash = rec.hash()
        self.registers[serial] = (imp, exp)
        return rec

    def many(self, serial: str, n: int) -> list[Reading]:
        return [self.read(serial) for _ in range(n)]


def forge(rec: Reading) -> bytes:
    """The record with one signature bit flipped (what an attacker without the key can produce)."""
    raw = bytearray(rec.encode())
    raw[-1] ^= 0x01
    return bytes(raw)


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
