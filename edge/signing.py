"""Adapter from the outbox's ``RecordSigner`` port to ``protocol.record.sign_reading``."""

from __future__ import annotations

from edge.devicekey import DeviceSigner
from edge.outbox import SignedRecord
from protocol.record import ReadingFields, sign_reading


class ProtocolSigner:
    """Signs protocol v1 records with the device key."""

    def __init__(self, key: DeviceSigner) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"ProtocolSigner(device_id={self._key.device_id})"

    def __call__(self, fields: ReadingFields) -> SignedRecord:
        rec = sign_reading(self._key, fields)
        return SignedRecord(rec.encode(), rec.hash())
