"""One archived reading: the pieces of a signed record as stored (``reading_rows`` + device and meter), and the
record rebuilt from them. Pure."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from protocol.keys import SIGNATURE_SIZE
from protocol.record import DOMAIN, assemble


@dataclass(frozen=True, slots=True)
class ArchivedReading:
    device_id: str
    public_key: bytes
    meter_id: uuid.UUID
    meter_serial: str
    seq: int
    timestamp_ms: int
    import_wh: int
    export_wh: int
    #: wire value: ``protocol.record.POWER_NOT_AVAILABLE`` for n/a
    power_w: int
    flags: int
    prev_hash: bytes
    signature: bytes
    #: central's compact keys (``devices.device_key``, ``meters.meter_key``): how the file is ordered and indexed
    device_key: int = 0
    meter_key: int = 0

    def raw(self) -> bytes:
        """The signed record, byte for byte as the gateway sent it."""
        return assemble(
            self.public_key, self.meter_serial, self.seq, self.timestamp_ms, self.import_wh, self.export_wh,
            self.power_w, self.flags, self.prev_hash, self.signature,
        )

    def record_hash(self) -> bytes:
        return hashlib.sha256(self.raw()).digest()

    def signed_message(self) -> bytes:
        return DOMAIN + self.raw()[:-SIGNATURE_SIZE]

    @property
    def name(self) -> str:
        """How reports name this record: ``<device id> seq <n>``."""
        return f"{self.device_id} seq {self.seq}"
