"""Reading record v1 (protocol §1 Reading record): the canonical, signed form of one meter reading.

Layout (little-endian), 172 + L bytes::

    0      4  magic b"GTXR"          38+L  8  seq u64 (>= 1)            70+L  4  power_w i32 (-2**31 = n/a)
    4      1  version = 1            46+L  8  timestamp_ms i64          74+L  2  flags u16 (bits 0, 1 only)
    5     32  device public key      54+L  8  import_wh u64             76+L 32  prev_hash
    37     1  L (1..32)              62+L  8  export_wh u64            108+L 64  signature
    38     L  meter serial (ASCII 0x21..0x7E)

signature = Ed25519 over ``b"GTX/reading/v1\\x00" + bytes[0, 108+L)``; record hash = SHA-256 of all 172 + L bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntFlag

from protocol.errors import BadFlagsError, MalformedError, ProtocolError, Reason
from protocol.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey, device_id, verify_signature

MAGIC = b"GTXR"
VERSION = 1
DOMAIN = b"GTX/reading/v1\x00"
POWER_NOT_AVAILABLE = -(2**31)
ZERO_HASH = bytes(32)
HASH_SIZE = 32
MIN_SERIAL, MAX_SERIAL = 1, 32
FIXED_SIZE = 172  # record size without the serial
MAX_RECORD_SIZE = FIXED_SIZE + MAX_SERIAL

_HEAD = struct.Struct("<4sB32sB")  # magic, version, public key, L
_TAIL = struct.Struct("<QqQQiH32s")  # seq, timestamp_ms, import_wh, export_wh, power_w, flags, prev_hash
_U64 = 2**64
_I64 = 2**63


class Flags(IntFlag):
    CLOCK_UNSYNCED = 1
    METER_REPLACED = 2


KNOWN_FLAGS = int(Flags.CLOCK_UNSYNCED | Flags.METER_REPLACED)


def _check_serial(serial: str) -> bytes:
    if not isinstance(serial, str):
        raise MalformedError("meter serial must be text")
    if not MIN_SERIAL <= len(serial) <= MAX_SERIAL:
        raise MalformedError(f"meter serial length must be {MIN_SERIAL}..{MAX_SERIAL}, got {len(serial)}")
    if not serial.isascii():
        raise MalformedError("meter serial may hold only printable ASCII 0x21..0x7E")
    raw = serial.encode("ascii")
    if any(not 0x21 <= b <= 0x7E for b in raw):
        raise MalformedError("meter serial may hold only printable ASCII 0x21..0x7E")
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingFields:
    """What one reading record states before it is signed: everything but the device key and the signature.

    A plain value: ``sign_reading`` and ``Reading`` validate it (``_checked_body``).
    """

    meter_serial: str
    seq: int
    timestamp_ms: int
    import_wh: int
    export_wh: int
    power_w: int | None
    flags: int = 0
    prev_hash: bytes


def _checked_body(public_key: bytes, f: ReadingFields) -> bytes:
    """Validate every field and return bytes [0, 108+L): what the signature covers, without the domain prefix."""
    serial = _check_serial(f.meter_serial)
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedError("device public key must be 32 bytes")
    if not 1 <= f.seq < _U64:
        raise MalformedError("seq must be 1..2**64-1")
    if not -_I64 <= f.timestamp_ms < _I64:
        raise MalformedError("timestamp_ms must fit in i64")
    if not (0 <= f.import_wh < _U64 and 0 <= f.export_wh < _U64):
        raise MalformedError("energy registers must fit in u64")
    if f.power_w is not None and not POWER_NOT_AVAILABLE < f.power_w < 2**31:
        raise MalformedError("power_w must fit in i32 (and -2**31 is reserved for 'not available')")
    if not 0 <= f.flags < 2**16:
        raise MalformedError("flags must fit in u16")
    if f.flags & ~KNOWN_FLAGS:
        raise BadFlagsError(f"reserved flag bits set: {f.flags:#06x}")
    if len(f.prev_hash) != HASH_SIZE:
        raise MalformedError("prev_hash must be 32 bytes")
    if f.seq == 1 and f.prev_hash != ZERO_HASH:
        raise ProtocolError("seq 1 must carry a zero prev_hash", Reason.CHAIN_MISMATCH)
    power = POWER_NOT_AVAILABLE if f.power_w is None else f.power_w
    return (
        _HEAD.pack(MAGIC, VERSION, public_key, len(serial))
        + serial
        + _TAIL.pack(f.seq, f.timestamp_ms, f.import_wh, f.export_wh, power, f.flags, f.prev_hash)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading(ReadingFields):
    """A signed reading record: its fields, the device's public key and the signature.

    Construction validates every field (not the signature: see ``verify``).
    """

    device_public_key: bytes
    signature: bytes
    _raw: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        body = _checked_body(self.device_public_key, self)
        if len(self.signature) != SIGNATURE_SIZE:
            raise MalformedError("signature must be 64 bytes")
        object.__setattr__(self, "_raw", body + self.signature)

    def encode(self) -> bytes:
        return self._raw

    def body(self) -> bytes:
        """Bytes [0, 108+L): everything the signature covers, without the domain prefix."""
        return self._raw[:-SIGNATURE_SIZE]

    def signed_message(self) -> bytes:
        """Domain prefix + body: the exact message the Ed25519 signature is over (for external verifiers)."""
        return DOMAIN + self.body()

    def hash(self) -> bytes:
        return hashlib.sha256(self._raw).digest()

    @property
    def device_id(self) -> str:
        return device_id(self.device_public_key)

    @property
    def meter_replaced(self) -> bool:
        return bool(self.flags & Flags.METER_REPLACED)

    @property
    def clock_unsynced(self) -> bool:
        return bool(self.flags & Flags.CLOCK_UNSYNCED)

    def verify(self) -> None:
        """Raise ``BadSignatureError`` unless the signature verifies under ``device_public_key``."""
        verify_signature(self.device_public_key, self.signed_message(), self.signature)


def sign_reading(key: SigningKey, fields: ReadingFields) -> Reading:
    """Build and sign a record with ``key``."""
    signature = key.sign(DOMAIN + _checked_body(key.public_key, fields))
    values = {f.name: getattr(fields, f.name) for f in dataclasses.fields(ReadingFields)}
    return Reading(device_public_key=key.public_key, signature=signature, **values)


def decode_reading(data: bytes, *, verify: bool = True) -> Reading:
    """Parse one record. Raises ``MalformedError``/``BadFlagsError``/``BadSignatureError`` (never partial data).

    ``verify=False`` skips only the signature check, for callers that verify with a faster binding.
    """
    data = bytes(data)
    if len(data) < FIXED_SIZE + MIN_SERIAL:
        raise MalformedError(f"record too short ({len(data)} bytes)")
    magic, version, public_key, length = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise MalformedError("bad record magic")
    if version != VERSION:
        raise MalformedError(f"unsupported record version {version}")
    if not MIN_SERIAL <= length <= MAX_SERIAL:
        raise MalformedError(f"meter serial length {length} outside 1..32")
    if len(data) != FIXED_SIZE + length:
        raise MalformedError(f"record length {len(data)} does not match serial length {length}")
    raw_serial = data[38 : 38 + length]
    if any(not 0x21 <= b <= 0x7E for b in raw_serial):
        raise MalformedError("meter serial holds bytes outside 0x21..0x7E")
    seq, ts, imp, exp, power, flags, prev_hash = _TAIL.unpack_from(data, 38 + length)
    reading = Reading(
        device_public_key=public_key,
        meter_serial=raw_serial.decode("ascii"),
        seq=seq,
        timestamp_ms=ts,
        import_wh=imp,
        export_wh=exp,
        power_w=None if power == POWER_NOT_AVAILABLE else power,
        flags=flags,
        prev_hash=prev_hash,
        signature=data[-SIGNATURE_SIZE:],
    )
    if verify:
        reading.verify()
    return reading


def record_hash(data: bytes) -> bytes:
    """SHA-256 of a complete encoded record (what the next record's prev_hash holds)."""
    return hashlib.sha256(data).digest()


def assemble(
    public_key: bytes,
    meter_serial: str,
    seq: int,
    timestamp_ms: int,
    import_wh: int,
    export_wh: int,
    power_w: int,
    flags: int,
    prev_hash: bytes,
    signature: bytes,
) -> bytes:
    """The record bytes from its parts, without validating them (for stores that keep a record in pieces and rebuild
    it: the signature then proves the parts). ``power_w`` is the wire value (``POWER_NOT_AVAILABLE`` for n/a)."""
    serial = meter_serial.encode("ascii")
    return (
        _HEAD.pack(MAGIC, VERSION, public_key, len(serial))
        + serial
        + _TAIL.pack(seq, timestamp_ms, import_wh, export_wh, power_w, flags, prev_hash)
        + signature
    )
