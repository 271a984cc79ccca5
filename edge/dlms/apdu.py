"""xDLMS / ACSE APDUs a reading client needs (IEC 62056-5-3): AARQ/AARE (lowest level, LLS, HLS-GMAC; with or
without the ciphering application context), GET-Request/Response (normal and with data block), ACTION for the
HLS pass 3/4 reply_to_HLS_authentication, RLRQ/RLRE, and DATA-NOTIFICATION. Logical-name referencing. Pure functions
over bytes; the ciphering itself is in ``security``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.dlms.axdr import Data, decode, decode_length, encode, encode_length
from edge.dlms.errors import AssociationRejectedError, DataAccessError, DlmsDecodeError, DlmsError

# 2.16.756.5.8.1.1: logical name referencing, no ciphering; 2.16.756.5.8.2.1: low level security (password).
APP_CONTEXT_LN = bytes.fromhex("60857405080101")
APP_CONTEXT_LN_CIPHERED = bytes.fromhex("60857405080103")  # 2.16.756.5.8.1.3
MECHANISM_LLS = bytes.fromhex("60857405080201")
MECHANISM_HLS_GMAC = bytes.fromhex("60857405080205")  # 2.16.756.5.8.2.5
# Conformance block bit n (Green Book numbering, bit 0 first on the wire) is 1 << (23 - n).
CONFORMANCE_BLOCK_TRANSFER_WITH_GET = 1 << (23 - 11)
CONFORMANCE_GET = 1 << (23 - 19)
CONFORMANCE_SELECTIVE_ACCESS = 1 << (23 - 21)
CONFORMANCE = CONFORMANCE_BLOCK_TRANSFER_WITH_GET | CONFORMANCE_GET | CONFORMANCE_SELECTIVE_ACCESS
DLMS_VERSION = 6

AARQ_TAG, AARE_TAG, RLRQ_TAG, RLRE_TAG = 0x60, 0x61, 0x62, 0x63
GET_REQUEST, GET_RESPONSE = 0xC0, 0xC4
ACTION_REQUEST, ACTION_RESPONSE = 0xC3, 0xC7
DATA_NOTIFICATION = 0x0F
ASSOCIATION_LN = (0, 0, 40, 0, 0, 255)  # current association (class 15)
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


def build_aarq(password: bytes | None = None, *, max_pdu: int = 0xFFFF, ciphered: bool = False,
               system_title: bytes | None = None, challenge: bytes | None = None,
               user_information: bytes | None = None) -> bytes:
    """AARQ for lowest-level security (nothing), LLS (``password``: the calling-authentication-value) or HLS-GMAC
    (``challenge``: the client-to-server challenge). ``ciphered`` selects the ciphering application context and
    sends ``system_title`` as calling-AP-title; ``user_information`` replaces the plain InitiateRequest (a
    glo-initiate-request)."""
    if password is not None and challenge is not None:
        raise ValueError("LLS password or HLS challenge, not both")
    body = _ber(0xA1, _ber(0x06, APP_CONTEXT_LN_CIPHERED if ciphered else APP_CONTEXT_LN))
    if system_title is not None:
        body += _ber(0xA6, _ber(0x04, system_title))
    if password is not None or challenge is not None:
        body += _ber(0x8A, b"\x07\x80")  # sender-acse-requirements: authentication
        body += _ber(0x8B, MECHANISM_LLS if password is not None else MECHANISM_HLS_GMAC)
        body += _ber(0xAC, _ber(0x80, password if password is not None else challenge or b""))
    info = initiate_request(max_pdu) if user_information is None else user_information
    body += _ber(0xBE, _ber(0x04, info))
    return _ber(AARQ_TAG, body)


@dataclass(frozen=True, slots=True)
class Association:
    """What the meter granted."""

    conformance: int
    max_pdu: int
    dlms_version: int
    #: HLS: the meter's system title (responding-AP-title) and server-to-client challenge.
    system_title: bytes | None = None
    challenge: bytes | None = None


@dataclass(frozen=True, slots=True)
class Aare:
    """The fields of an AARE a client acts on, before its user-information is deciphered."""

    result: int
    diagnostic: int
    user_information: bytes
    system_title: bytes | None
    challenge: bytes | None


def parse_aare_fields(apdu: bytes) -> Aare:  # noqa: PLR0912 - one branch per AARE field
    """The AARE's result, diagnostic, responding-AP-title, responding-authentication-value and user-information."""
    if not apdu or apdu[0] != AARE_TAG:
        raise DlmsDecodeError(f"expected AARE, got tag 0x{apdu[:1].hex()}")
    length, pos = decode_length(apdu, 1)
    if pos + length != len(apdu):
        raise DlmsDecodeError("AARE length mismatch")
    result, diagnostic, user_info = None, 0, b""
    title: bytes | None = None
    challenge: bytes | None = None
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
        elif tag == 0xA4:
            inner = _ber_items(value)
            if inner and inner[0][0] == 0x04:
                title = inner[0][1]
        elif tag == 0xAA:
            inner = _ber_items(value)
            if inner and inner[0][0] == 0x80:
                challenge = inner[0][1]
    if result is None:
        raise DlmsDecodeError("AARE without result")
    return Aare(result, diagnostic, user_info, title, challenge)


def parse_aare(apdu: bytes) -> Association:
    """Parse an AARE with a plain InitiateResponse. Raises AssociationRejectedError when the meter refused."""
    aare = parse_aare_fields(apdu)
    if aare.result != 0:
        raise AssociationRejectedError(aare.result, aare.diagnostic)
    return parse_initiate_response(aare.user_information)


def parse_initiate_response(ui: bytes) -> Association:
    """The xDLMS InitiateResponse carried in an AARE's user-information (plain, or as deciphered)."""
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


def build_action_request(invoke_id: int, class_id: int, obis: tuple[int, ...], method: int,
                         parameter: bytes) -> bytes:
    """ACTION-Request-Normal with an A-XDR encoded ``parameter``."""
    if len(obis) != 6:
        raise ValueError("OBIS code has six parts")
    return (
        bytes([ACTION_REQUEST, 0x01, 0xC0 | (invoke_id & 0x0F)])
        + class_id.to_bytes(2, "big")
        + bytes(obis)
        + bytes([method & 0xFF, 0x01])
        + parameter
    )


def parse_action_response(apdu: bytes) -> Data | None:
    """ACTION-Response-Normal: the return parameter (None when absent). Raises DlmsError when the action failed."""
    if not apdu:
        raise DlmsDecodeError("empty APDU")
    if apdu[0] in (EXCEPTION_RESPONSE, CONFIRMED_SERVICE_ERROR):
        raise DlmsError(f"meter refused the action ({apdu.hex()})")
    if apdu[0] != ACTION_RESPONSE or len(apdu) < 4 or apdu[1] != 0x01:
        raise DlmsDecodeError(f"expected ACTION-Response-Normal, got {apdu[:4].hex()}")
    if apdu[3] != 0:
        raise DlmsError(f"action failed (result {apdu[3]})")
    if len(apdu) < 5:
        raise DlmsDecodeError("truncated ACTION-Response-Normal")
    if apdu[4] == 0 or len(apdu) == 5:
        return None
    if apdu[5] == 0x01 and len(apdu) == 7:
        raise DataAccessError(apdu[6])
    if apdu[5] != 0x00:
        raise DlmsDecodeError("bad ACTION return parameter")
    data, pos = decode(apdu, 6)
    if pos != len(apdu):
        raise DlmsDecodeError("trailing bytes after ACTION data")
    return data


@dataclass(frozen=True, slots=True)
class Notification:
    """A DATA-NOTIFICATION: long-invoke-id, the optional date-time (12 octets) and the body."""

    invoke_id: int
    date_time: bytes | None
    body: Data


def parse_data_notification(apdu: bytes) -> Notification:
    if len(apdu) < 6 or apdu[0] != DATA_NOTIFICATION:
        raise DlmsDecodeError(f"expected DATA-NOTIFICATION, got {apdu[:1].hex()}")
    invoke = int.from_bytes(apdu[1:5], "big")
    pos = 5
    stamp: bytes | None = None
    if apdu[pos] == 0x00:
        pos += 1
    elif apdu[pos] == 0x0C and len(apdu) >= pos + 13:
        stamp = bytes(apdu[pos + 1 : pos + 13])
        pos += 13
    elif apdu[pos] == 0x09 and len(apdu) >= pos + 14 and apdu[pos + 1] == 0x0C:  # as a tagged octet-string
        stamp = bytes(apdu[pos + 2 : pos + 14])
        pos += 14
    else:
        raise DlmsDecodeError("bad DATA-NOTIFICATION date-time")
    body, end = decode(apdu, pos)
    if end != len(apdu):
        raise DlmsDecodeError("trailing bytes after DATA-NOTIFICATION body")
    return Notification(invoke, stamp, body)


def build_data_notification(invoke_id: int, date_time: bytes | None, body: Data) -> bytes:
    if date_time is not None and len(date_time) != 12:
        raise ValueError("date-time is 12 octets")
    stamp = b"\x00" if date_time is None else b"\x0c" + date_time
    return bytes([DATA_NOTIFICATION]) + invoke_id.to_bytes(4, "big") + stamp + encode(body)


def build_rlrq() -> bytes:
    """RLRQ with reason "normal"."""
    return _ber(RLRQ_TAG, _ber(0x80, b"\x00"))


def check_rlre(apdu: bytes) -> None:
    """Accept any RLRE (some meters send a mis-sized one); reject anything else."""
    if not apdu or apdu[0] != RLRE_TAG:
        raise DlmsDecodeError(f"expected RLRE, got {apdu[:2].hex()}")
