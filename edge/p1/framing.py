"""Cutting a P1 byte stream into telegrams (pure, no I/O).

Plain telegrams run from ``/`` to ``!`` followed by the CRC (4 hex digits; none in DSMR 2.2/3; some meters, e.g. the
Warmtelink, leave out leading zeros) and CR LF (LF alone when something on the way rewrote line endings). A ``/``
before the ``!`` means the telegram in progress was cut off (the meter or the line restarted): it is dropped and
reported as truncated; so is anything longer than :data:`MAX_TELEGRAM`. Bytes before the first ``/`` (the tail of
a telegram already under way when the port was opened) are skipped silently.

Encrypted telegrams (Luxembourg Smarty, Austrian customer interfaces) are DLMS general-glo-ciphering APDUs:
``0xDB``, the system-title length and system title, ``0x82`` and a two-byte length, then that many bytes.
"""

from __future__ import annotations

import abc
import re

MAX_TELEGRAM = 16 * 1024
_END = re.compile(rb"!([0-9A-Fa-f]{1,4})?\r?\n")
#: what may still be on its way after the ``!`` (``\Z``: ``$`` would also match before a final LF, and a telegram
#: whose CRC was not 4 digits then waited for its end until the next telegram cut it off)
_END_PREFIX = re.compile(rb"![0-9A-Fa-f]{0,4}\r?\Z")
GLO_CIPHER_TAG = 0xDB
LONG_LENGTH_2 = 0x82


class Truncated:
    """A telegram that did not reach its end; ``reason`` says how it ended."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


Item = bytes | Truncated


class _Framer(abc.ABC):
    """Bytes in, whole frames (and what was cut off) out; a frame starts at ``START``, bytes before it are skipped."""

    START: bytes | int

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Item]:
        buf = self._buf
        buf += data
        out: list[Item] = []
        while self._skip_to_start(buf) and self._take(buf, out):
            pass
        return out

    def _skip_to_start(self, buf: bytearray) -> bool:
        """Drop the bytes before the first start mark; ``False`` (and ``buf`` emptied) when there is none."""
        start = buf.find(self.START)
        if start < 0:
            buf.clear()
            return False
        if start:
            del buf[:start]
        return True

    @abc.abstractmethod
    def _take(self, buf: bytearray, out: list[Item]) -> bool:
        """With a start mark at ``buf[0]``: move what can be decided of the frame from ``buf`` to ``out``; ``False``
        when the rest has to wait for more bytes."""


class PlainFramer(_Framer):
    START = b"/"

    def _take(self, buf: bytearray, out: list[Item]) -> bool:
        bang = buf.find(b"!", 1)
        nxt = buf.find(b"/", 1)
        if nxt > 0 and (bang < 0 or nxt < bang):
            out.append(Truncated("a new telegram started before the end of the previous one"))
            del buf[:nxt]
            return True
        if bang < 0:
            if len(buf) > MAX_TELEGRAM:
                out.append(Truncated(f"no end mark within {MAX_TELEGRAM} bytes"))
                buf.clear()
            return False
        m = _END.match(buf, bang)
        if m is None:
            if _END_PREFIX.match(buf, bang):
                return False  # the CRC and CR LF are still on their way
            out.append(Truncated("malformed end of telegram"))
            del buf[: bang + 1]
            return True
        out.append(bytes(buf[: m.end()]))
        del buf[: m.end()]
        return True


class CipherFramer(_Framer):
    START = GLO_CIPHER_TAG

    def _take(self, buf: bytearray, out: list[Item]) -> bool:
        if len(buf) < 2:
            return False
        title_len = buf[1]
        header = 2 + title_len + 3
        if len(buf) < header:
            return False
        if title_len != 8 or buf[2 + title_len] != LONG_LENGTH_2:
            del buf[:1]  # not a frame start: resynchronise on the next tag byte
            return True
        size = header + int.from_bytes(buf[header - 2 : header], "big")
        if size > MAX_TELEGRAM:
            out.append(Truncated(f"frame length {size} is beyond {MAX_TELEGRAM} bytes"))
            del buf[:1]
            return True
        if len(buf) < size:
            return False
        out.append(bytes(buf[:size]))
        del buf[:size]
        return True
