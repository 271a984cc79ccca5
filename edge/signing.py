"""Adapter from the outbox's ``RecordSigner`` port to ``protocol.record.sign_reading``."""

from __future__ import annotations

from edge.outbox import SignedRecord
from protocol.keys import DeviceKey
from protocol.record import sign_reading


class ProtocolSigner:
    """Signs protocol v1 records with the device key."""

    def __init__(self, key: DeviceKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"ProtocolSigner(device_id={self._key.device_id})"

    def __call__(
        self,
        *,
        meter_serial: str,
        seq: int,
        timestamp_ms: int,
        import_wh: int,
        export_wh: int,
        power_w: int | None,
        flags: int,
        prev_hash: bytes,
    ) -> SignedRecord:
        rec = sign_reading(
            self._key,
            meter_serial=meter_serial,
            seq=seq,
            timestamp_ms=timestamp_ms,
            import_wh=import_wh,
            export_wh=export_wh,
            power_w=power_w,
            flags=flags,
            prev_hash=prev_hash,
        )
        data = rec.encode()
        return SignedRecord(data, rec.hash())
