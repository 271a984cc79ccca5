"""A little-endian reader over account data (Borsh-style ``u32`` lengths), for the Token-2022 extension decoders of
the JSON-RPC presenter and of certificate validation. ``error`` builds the exception a short read raises, so each
caller keeps its own error type."""

from __future__ import annotations

import struct
from collections.abc import Callable


class ByteReader:
    def __init__(self, data: bytes, error: Callable[[str], Exception] = ValueError) -> None:
        self.data = data
        self.pos = 0
        self._error = error

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self._error("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def string(self) -> str:
        """A ``u32``-length-prefixed UTF-8 string."""
        raw = self.take(self.u32())
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise self._error("string is not UTF-8") from exc
