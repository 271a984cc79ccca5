"""IEC 62056-47 TCP/UDP wrapper: an 8-byte header (version 1, source wPort, destination wPort, length) per APDU."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from edge.dlms.errors import DlmsDecodeError

VERSION = 1
HEADER = struct.Struct(">HHHH")
MAX_APDU = 0xFFFF


@dataclass(frozen=True, slots=True)
class WrapperPdu:
    source: int
    destination: int
    apdu: bytes


def encode_wrapper(source: int, destination: int, apdu: bytes) -> bytes:
    if len(apdu) > MAX_APDU:
        raise ValueError("APDU too long for the wrapper")
    return HEADER.pack(VERSION, source, destination, len(apdu)) + apdu


class WrapperDecoder:
    """Incremental decoder: feed received bytes, get complete PDUs."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[WrapperPdu]:
        self._buf += data
        out: list[WrapperPdu] = []
        while len(self._buf) >= HEADER.size:
            version, src, dst, length = HEADER.unpack_from(self._buf)
            if version != VERSION:
                self._buf.clear()
                raise DlmsDecodeError(f"wrapper version {version} (expected 1)")
            if len(self._buf) < HEADER.size + length:
                break
            out.append(WrapperPdu(src, dst, bytes(self._buf[HEADER.size : HEADER.size + length])))
            del self._buf[: HEADER.size + length]
        return out
