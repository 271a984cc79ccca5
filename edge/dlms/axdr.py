"""A-XDR encoding of COSEM ``Data`` (IEC 62056-6-2 / Green Book): the values carried by GET responses.

``Data`` keeps the type tag next to the value, so a decoded value re-encodes to the same bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from edge.dlms.errors import DlmsDecodeError


class Tag(IntEnum):
    NULL = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5  # i32
    DOUBLE_LONG_UNSIGNED = 6  # u32
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15  # i8
    LONG = 16  # i16
    UNSIGNED = 17  # u8
    LONG_UNSIGNED = 18  # u16
    LONG64 = 20  # i64
    LONG64_UNSIGNED = 21  # u64
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27


_FIXED = {
    Tag.DOUBLE_LONG: ">i",
    Tag.DOUBLE_LONG_UNSIGNED: ">I",
    Tag.INTEGER: ">b",
    Tag.LONG: ">h",
    Tag.UNSIGNED: ">B",
    Tag.LONG_UNSIGNED: ">H",
    Tag.LONG64: ">q",
    Tag.LONG64_UNSIGNED: ">Q",
    Tag.ENUM: ">B",
    Tag.BCD: ">b",
    Tag.FLOAT32: ">f",
    Tag.FLOAT64: ">d",
}
_OCTETS = {Tag.DATE_TIME: 12, Tag.DATE: 5, Tag.TIME: 4}
INTEGER_TAGS = frozenset(
    {Tag.DOUBLE_LONG, Tag.DOUBLE_LONG_UNSIGNED, Tag.INTEGER, Tag.LONG, Tag.UNSIGNED, Tag.LONG_UNSIGNED, Tag.LONG64,
     Tag.LONG64_UNSIGNED}
)

Value: TypeAlias = "bool | int | float | bytes | str | tuple[Data, ...] | tuple[int, bytes] | None"
MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Data:
    """A typed COSEM value. Arrays/structures hold a tuple of Data; bit-strings hold (bit count, bytes)."""

    tag: Tag
    value: Value = None


def encode_length(n: int) -> bytes:
    if n < 0:
        raise ValueError("negative length")
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise DlmsDecodeError("truncated length")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4 or pos + 1 + size > len(buf):
        raise DlmsDecodeError("bad length encoding")
    return int.from_bytes(buf[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def encode(d: Data) -> bytes:  # noqa: PLR0911 - one return per A-XDR type family
    tag, v = d.tag, d.value
    head = bytes([tag])
    if tag is Tag.NULL:
        return head
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        assert isinstance(v, tuple)
        items = [x for x in v if isinstance(x, Data)]
        return head + encode_length(len(items)) + b"".join(encode(x) for x in items)
    if tag is Tag.BOOLEAN:
        return head + (b"\x01" if v else b"\x00")
    if tag is Tag.BIT_STRING:
        assert isinstance(v, tuple)
        bits, raw = v
        assert isinstance(bits, int)
        assert isinstance(raw, bytes)
        return head + encode_length(bits) + raw
    if tag in (Tag.OCTET_STRING,):
        assert isinstance(v, bytes)
        return head + encode_length(len(v)) + v
    if tag in (Tag.VISIBLE_STRING, Tag.UTF8_STRING):
        assert isinstance(v, str)
        raw = v.encode("ascii" if tag is Tag.VISIBLE_STRING else "utf-8")
        return head + encode_length(len(raw)) + raw
    if tag in _OCTETS:
        assert isinstance(v, bytes)
        if len(v) != _OCTETS[tag]:
            raise ValueError(f"{tag.name} takes {_OCTETS[tag]} octets")
        return head + v
    fmt = _FIXED[tag]
    return head + struct.pack(fmt, v)


def decode(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[Data, int]:  # noqa: PLR0911, PLR0912 - per type
    """Decode one Data at ``pos``; returns it and the position after it."""
    if depth > MAX_DEPTH:
        raise DlmsDecodeError("data nested too deeply")
    if pos >= len(buf):
        raise DlmsDecodeError("truncated data")
    try:
        tag = Tag(buf[pos])
    except ValueError:
        raise DlmsDecodeError(f"unsupported data tag {buf[pos]}") from None
    pos += 1
    if tag is Tag.NULL:
        return Data(tag), pos
    if tag in (Tag.ARRAY, Tag.STRUCTURE):
        count, pos = decode_length(buf, pos)
        if count > len(buf) - pos:
            raise DlmsDecodeError("element count exceeds data")
        items = []
        for _ in range(count):
            item, pos = decode(buf, pos, depth + 1)
            items.append(item)
        return Data(tag, tuple(items)), pos
    if tag is Tag.BOOLEAN:
        _need(buf, pos, 1)
        return Data(tag, buf[pos] != 0), pos + 1
    if tag is Tag.BIT_STRING:
        bits, pos = decode_length(buf, pos)
        n = (bits + 7) // 8
        _need(buf, pos, n)
        return Data(tag, (bits, bytes(buf[pos : pos + n]))), pos + n
    if tag in (Tag.OCTET_STRING, Tag.VISIBLE_STRING, Tag.UTF8_STRING):
        n, pos = decode_length(buf, pos)
        _need(buf, pos, n)
        raw = bytes(buf[pos : pos + n])
        if tag is Tag.OCTET_STRING:
            return Data(tag, raw), pos + n
        try:
            text = raw.decode("ascii" if tag is Tag.VISIBLE_STRING else "utf-8")
        except UnicodeDecodeError:
            raise DlmsDecodeError(f"invalid {tag.name}") from None
        return Data(tag, text), pos + n
    if tag in _OCTETS:
        n = _OCTETS[tag]
        _need(buf, pos, n)
        return Data(tag, bytes(buf[pos : pos + n])), pos + n
    fmt = _FIXED[tag]
    n = struct.calcsize(fmt)
    _need(buf, pos, n)
    return Data(tag, struct.unpack_from(fmt, buf, pos)[0]), pos + n


def decode_all(buf: bytes) -> Data:
    d, pos = decode(buf)
    if pos != len(buf):
        raise DlmsDecodeError(f"{len(buf) - pos} trailing bytes after data")
    return d


def _need(buf: bytes, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise DlmsDecodeError("truncated data")
