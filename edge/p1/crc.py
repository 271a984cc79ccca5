"""CRC16 of a DSMR telegram (CRC-16/ARC: polynomial 0x8005 reflected, initial 0), from '/' up to and including '!'."""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc16(data: bytes) -> int:
    crc = 0
    table = _TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc
