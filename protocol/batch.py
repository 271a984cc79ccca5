"""Batch (protocol §2 Batch): the payload of one readings message.

``b"GTXB"`` | version 1 (u8) | N (u16, 1..1000) | N × (length u16 | record). Nothing may follow the last record.
A batch holds records of one device only, in increasing seq order.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

from protocol.errors import MalformedError
from protocol.record import FIXED_SIZE, MAX_RECORD_SIZE, MIN_SERIAL, Reading, decode_reading

MAGIC = b"GTXB"
VERSION = 1
MAX_RECORDS = 1000
_HEAD = struct.Struct("<4sBH")
_LEN = struct.Struct("<H")


def encode_batch(records: Sequence[Reading | bytes]) -> bytes:
    """Frame records (decoded or already encoded) into one batch. The caller keeps them to one device, in order."""
    if not 1 <= len(records) <= MAX_RECORDS:
        raise MalformedError(f"a batch holds 1..{MAX_RECORDS} records, got {len(records)}")
    parts = [_HEAD.pack(MAGIC, VERSION, len(records))]
    for rec in records:
        raw = rec.encode() if isinstance(rec, Reading) else bytes(rec)
        parts.append(_LEN.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def split_batch(data: bytes) -> list[bytes]:
    """Check the framing only and return the raw records (each still to be decoded and verified).

    Receivers that report per-record outcomes (central's ingest) use this, then decode each record.
    """
    data = bytes(data)
    if len(data) < _HEAD.size:
        raise MalformedError("batch too short")
    magic, version, count = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise MalformedError("bad batch magic")
    if version != VERSION:
        raise MalformedError(f"unsupported batch version {version}")
    if not 1 <= count <= MAX_RECORDS:
        raise MalformedError(f"batch record count {count} outside 1..{MAX_RECORDS}")
    records: list[bytes] = []
    pos = _HEAD.size
    for i in range(count):
        if pos + _LEN.size > len(data):
            raise MalformedError(f"batch ends inside the length of record {i}")
        (length,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        if not FIXED_SIZE + MIN_SERIAL <= length <= MAX_RECORD_SIZE:
            raise MalformedError(f"record {i} length {length} is impossible")
        if pos + length > len(data):
            raise MalformedError(f"batch ends inside record {i}")
        records.append(data[pos : pos + length])
        pos += length
    if pos != len(data):
        raise MalformedError(f"{len(data) - pos} trailing bytes after the last record")
    return records


def decode_batch(data: bytes, *, verify: bool = True) -> list[Reading]:
    """Strictly decode a batch: every record valid, one device, strictly increasing seq."""
    readings = [decode_reading(raw, verify=verify) for raw in split_batch(data)]
    first = readings[0]
    for prev, cur in itertools.pairwise(readings):
        if cur.device_public_key != first.device_public_key:
            raise MalformedError("a batch must hold records of one device only")
        if cur.seq <= prev.seq:
            raise MalformedError("records in a batch must have increasing seq")
    return readings
