"""xDLMS / ACSE APDUs a reading client needs (IEC 62056-5-3): AARQ/AARE, GET-Request/Response (normal and
with data block), RLRQ/RLRE. Logical-name referencing, no ciphering. Pure functions over bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.dlms.axdr import Data, decode, decode_length, encode_length
from edge.dlms.errors import AssociationRejectedError, DataAccessError, DlmsDecodeError, DlmsError

# 2.16.756.5.8.1.1: logical name referencing, no ciphering; 2.16.756.5.8.2.1: low level security (password).
APP_CONTEXT_LN = bytes.fromhex("60857405080101")
MECHANISM_LLS = bytes.fromhex("60857405080201")
# Conformance block bit n (Green Book numbering, bit 0 first on the wire) is 1 << (23 - n).
CONFORMANCE_BLOCK_TRANSFER_WITH_GET = 1 << (23 - 11)
CONFORMANCE_GET = 1 << (23 - 19)
CONFORMANCE_SELECTIVE_ACCESS = 1 << (23 - 21)
CONFORMANCE = CONFORMANCE_BLOCK_TRANSFER_WITH_GET | CONFORMANCE_GET | CONFORMANCE_SELECTIVE_ACCESS
DLMS_VERSION = 6

AARQ_TAG, AARE_TAG, RLRQ_TAG, RLRE_TAG = 0x60, 0x61, 0x62, 0x63
GET_REQUEST, GET_RESPONSE = 0xC0, 0xC4
EXCEPTION_RESPONSE, CONFIRMED_SERVICE_ERROR = 0xD8, 0x0E
INITIATE_REQUEST, INITIATE_RESPONSE = 0x01, 0x08


def _ber(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(body)) + body


def _ber_items(buf: bytes) -> list[tuple[int, bytes]]:
    items = []
    pos = 0
    while pos < len(buf):
        tag = buf[pos]
        length, pos = decode_length(buf, pos + 1)
        if pos + length > len(buf):
            raise DlmsDecodeError("truncated BER element")
        items.append((tag, buf[pos : pos + length]))
        pos += length
    return items


def initiate_request(max_pdu: int = 0xFFFF, conformance: int = CONFORMANCE) -> bytes:
    return (
        bytes([INITIATE_REQUEST, 0x00, 0x00, 0x00, DLMS_VERSION])
        + bytes([0x5F, 0x1F, 0x04, 0x00])
        + conformance.to_bytes(3, "big")
        + max_pdu.to_bytes(2, "big")
    )


def build_aarq(password: bytes | None = None, *, max_pdu: int = 0xFFFF) -> bytes:
    """AARQ for lowest-level security (``password`` None) or LLS (the password as calling-authentication-value)."""
    body = _ber(0xA1, _ber(0x06, APP_CONTEXT_LN))
    if password is not None:
        body += _ber(0x8A, b"\x07\x80")  # sender-acse-requirements: authentication
        body += _ber(0x8B, MECHANISM_LLS)
        body += _ber(0xAC, _ber(0x80, password))
    body += _ber(0xBE, _ber(0x04, initiate_request(max_pdu)))
    return _ber(AARQ_TAG, body)


@dataclass(frozen=True, slots=True)
class Association:
    """What the meter granted."""

    conformance: int
    max_pdu: int
    dlms_version: int


def parse_aare(apdu: bytes) -> Association:
    """Parse an AARE. Raises AssociationRejectedError when the meter refused."""
    if not apdu or apdu[0] != AARE_TAG:
        raise DlmsDecodeError(f"expected AARE, got tag 0x{apdu[:1].hex()}")
    length, pos = decode_length(apdu, 1)
    if pos + length != len(apdu):
        raise DlmsDecodeError("AARE length mismatch")
    result, diagnostic, user_info = None, 0, b""
    for tag, value in _ber_items(apdu[pos:]):
        if tag == 0xA2:
            inner = _ber_items(value)
            if not inner or inner[0][0] != 0x02 or not inner[0][1]:
                raise DlmsDecodeError("bad AARE result")
            result = inner[0][1][-1]
        elif tag == 0xA3:
            inner = _ber_items(value)
            if inner:
                diag = _ber_items(inner[0][1])
                if diag and diag[0][1]:
                    diagnostic = diag[0][1][-1]
        elif tag == 0xBE:
            inner = _ber_items(value)
            if inner and inner[0][0] == 0x04:
                user_info = inner[0][1]
    if result is None:
        raise DlmsDecodeError("AARE without result")
    if result != 0:
        raise AssociationRejectedError(result, diagnostic)
    return _parse_initiate_response(user_info)


def _parse_initiate_response(ui: bytes) -> Association:
    if not ui:
        raise DlmsDecodeError("AARE without xDLMS InitiateResponse")
    if ui[0] == CONFIRMED_SERVICE_ERROR:
        raise DlmsError(f"meter refused the xDLMS context (confirmed service error {ui[1:].hex()})")
    if ui[0] != INITIATE_RESPONSE:
        raise DlmsDecodeError(f"unexpected user-information tag 0x{ui[0]:02x}")
    pos = 1
    if len(ui) < 2:
        raise DlmsDecodeError("truncated InitiateResponse")
    if ui[pos]:  # negotiated-quality-of-service present
        pos += 1
    pos += 1
    if len(ui) < pos + 1 + 7 + 2:
        raise DlmsDecodeError("truncated InitiateResponse")
    version = ui[pos]
    pos += 1
    if ui[pos : pos + 3] != b"\x5f\x1f\x04":
        raise DlmsDecodeError("InitiateResponse without conformance block")
    conformance = int.from_bytes(ui[pos + 4 : pos + 7], "big")
    max_pdu = int.from_bytes(ui[pos + 7 : pos + 9], "big")
    return Association(conformance=conformance, max_pdu=max_pdu, dlms_version=version)


def build_get_request(invoke_id: int, class_id: int, obis: tuple[int, ...], attribute: int) -> bytes:
    """GET-Request-Normal for one attribute, no selective access. ``invoke_id`` 0..15, high priority, confirmed."""
    if len(obis) != 6:
        raise ValueError("OBIS code has six parts")
    return (
        bytes([GET_REQUEST, 0x01, 0xC0 | (invoke_id & 0x0F)])
        + class_id.to_bytes(2, "big")
        + bytes(obis)
        + bytes([attribute & 0xFF, 0x00])
    )


def build_get_next(invoke_id: int, block_number: int) -> bytes:
    return bytes([GET_REQUEST, 0x02, 0xC0 | (invoke_id & 0x0F)]) + block_number.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class GetResult:
    """A GET response: either ``data`` (complete) or a data block (``block`` bytes, ``last`` flag, ``number``)."""

    invoke_id: int
    data: Data | None = None
    block: bytes | None = None
    block_number: int = 0
    last: bool = True


def parse_get_response(apdu: bytes) -> GetResult:  # noqa: PLR0912 - one branch per response variant
    """Parse GET-Response-Normal or -With-Datablock. Raises DataAccessError for a data-access-result."""
    if not apdu:
        raise DlmsDecodeError("empty APDU")
    if apdu[0] == EXCEPTION_RESPONSE:
        raise DlmsError(f"meter sent an exception response ({apdu[1:].hex()})")
    if apdu[0] == CONFIRMED_SERVICE_ERROR:
        raise DlmsError(f"meter sent a confirmed service error ({apdu[1:].hex()})")
    if apdu[0] != GET_RESPONSE or len(apdu) < 4:
        raise DlmsDecodeError(f"expected GET-Response, got {apdu[:4].hex()}")
    kind, invoke = apdu[1], apdu[2] & 0x0F
    if kind == 0x01:
        if apdu[3] == 0x00:
            data, pos = decode(apdu, 4)
            if pos != len(apdu):
                raise DlmsDecodeError("trailing bytes after GET data")
            return GetResult(invoke, data=data)
        if apdu[3] == 0x01 and len(apdu) == 5:
            raise DataAccessError(apdu[4])
        raise DlmsDecodeError("bad GET-Response-Normal")
    if kind == 0x02:
        if len(apdu) < 9:
            raise DlmsDecodeError("truncated GET-Response-With-Datablock")
        last = apdu[3] != 0
        number = int.from_bytes(apdu[4:8], "big")
        if apdu[8] == 0x01 and len(apdu) == 10:
            raise DataAccessError(apdu[9])
        if apdu[8] != 0x00:
            raise DlmsDecodeError("bad data block")
        n, pos = decode_length(apdu, 9)
        if pos + n != len(apdu):
            raise DlmsDecodeError("data block length mismatch")
        return GetResult(invoke, block=bytes(apdu[pos:]), block_number=number, last=last)
    raise DlmsDecodeError(f"unsupported GET-Response type {kind}")


def build_rlrq() -> bytes:
    """RLRQ with reason "normal"."""
    return _ber(RLRQ_TAG, _ber(0x80, b"\x00"))


def check_rlre(apdu: bytes) -> None:
    """Accept any RLRE (some meters send a mis-sized one); reject anything else."""
    if not apdu or apdu[0] != RLRE_TAG:
        raise DlmsDecodeError(f"expected RLRE, got {apdu[:2].hex()}")
