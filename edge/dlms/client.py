"""DLMS/COSEM client over any transport that exchanges whole APDUs (TCP wrapper or HDLC): association (lowest
level, LLS, HLS-GMAC), GET of class 3/4 attributes with block transfer, release; with :class:`ClientSecurity` every
xDLMS APDU travels glo-ciphered (security suite 0). The protocol logic is in the pure ``apdu`` and ``security``
modules; invocation counters come from a :class:`CounterSource` that stores each one before it is used."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from edge.dlms.apdu import (
    ASSOCIATION_LN,
    CONFIRMED_SERVICE_ERROR,
    CONFORMANCE_GET,
    EXCEPTION_RESPONSE,
    Association,
    build_aarq,
    build_action_request,
    build_get_next,
    build_get_request,
    build_rlrq,
    check_rlre,
    initiate_request,
    parse_aare,
    parse_aare_fields,
    parse_action_response,
    parse_get_response,
    parse_initiate_response,
)
from edge.dlms.axdr import Data, Tag, decode_all, encode
from edge.dlms.errors import AssociationRejectedError, CounterRejectedError, DlmsDecodeError, DlmsError
from edge.dlms.security import (
    CipherError,
    Keys,
    SecurityPolicy,
    check_gmac,
    gmac,
    is_ciphered,
    unwrap,
    wrap_glo,
)

MAX_BLOCKS = 256
CHALLENGE_LEN = 16
INVOCATION_COUNTER_ERROR = 6  # exception-response service-error (IEC 62056-5-3)


class CounterSource(Protocol):
    """Hands out this client's invocation counters for one meter, each stored durably before it is returned."""

    def next_counter(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """How to talk to a meter that needs HLS-GMAC and/or ciphered APDUs."""

    keys: Keys
    system_title: bytes
    counters: CounterSource
    policy: SecurityPolicy = SecurityPolicy.AUTHENTICATED_ENCRYPTED
    hls_gmac: bool = True


class ApduTransport(Protocol):
    """Carries one request APDU and returns the response APDU."""

    async def request(self, apdu: bytes) -> bytes: ...


def _check_exception(apdu: bytes) -> None:
    if apdu[:1] == bytes([EXCEPTION_RESPONSE]) and len(apdu) >= 3 and apdu[2] == INVOCATION_COUNTER_ERROR:
        raise CounterRejectedError("meter rejected our invocation counter")


class DlmsClient:
    def __init__(self, transport: ApduTransport, security: ClientSecurity | None = None) -> None:
        self._t = transport
        self._invoke = 0
        self._security = security
        self._server_title: bytes | None = None
        self._server_counter = -1
        self.association: Association | None = None

    @property
    def ciphered(self) -> bool:
        return self._security is not None and self._security.policy is not SecurityPolicy.NONE

    async def _request(self, apdu: bytes) -> bytes:
        """One xDLMS exchange, glo-ciphered when the association is."""
        sec = self._security
        if sec is None or sec.policy is SecurityPolicy.NONE:
            return await self._t.request(apdu)
        reply = await self._t.request(wrap_glo(sec.policy, sec.keys, sec.system_title, sec.counters.next_counter(),
                                               apdu))
        return self._open(reply)

    def _open(self, reply: bytes) -> bytes:
        sec = self._security
        assert sec is not None
        if not is_ciphered(reply):
            _check_exception(reply)
            if reply[:1] in (bytes([EXCEPTION_RESPONSE]), bytes([CONFIRMED_SERVICE_ERROR])):
                return reply  # errors travel in clear; the parsers report them
            raise CipherError(f"meter answered a ciphered request in clear (tag 0x{reply[:1].hex()})")
        opened = unwrap(sec.keys, self._server_title, reply)
        if opened.counter <= self._server_counter:
            raise CipherError(f"meter replayed invocation counter {opened.counter}")
        self._server_counter = opened.counter
        return opened.apdu

    async def associate(self, password: bytes | None = None) -> Association:
        """AARQ/AARE with lowest-level security (no password), LLS (password), or — with ``security`` — HLS-GMAC
        and/or the ciphered context, then HLS pass 3/4."""
        sec = self._security
        if sec is None:
            assoc = parse_aare(await self._t.request(build_aarq(password)))
        else:
            assoc = await self._associate_secure(sec, password)
        if not assoc.conformance & CONFORMANCE_GET:
            raise DlmsError("meter did not grant the GET service")
        self.association = assoc
        return assoc

    async def _associate_secure(self, sec: ClientSecurity, password: bytes | None) -> Association:
        challenge = os.urandom(CHALLENGE_LEN) if sec.hls_gmac else None
        ciphered = sec.policy is not SecurityPolicy.NONE
        info = initiate_request()
        if ciphered:
            info = wrap_glo(sec.policy, sec.keys, sec.system_title, sec.counters.next_counter(), info)
        reply = await self._t.request(build_aarq(None if sec.hls_gmac else password, ciphered=ciphered,
                                                 system_title=sec.system_title, challenge=challenge,
                                                 user_information=info))
        _check_exception(reply)
        aare = parse_aare_fields(reply)
        if aare.result != 0:
            raise AssociationRejectedError(aare.result, aare.diagnostic)
        self._server_title = aare.system_title
        ui = aare.user_information
        if ciphered:
            if self._server_title is None:
                raise DlmsDecodeError("AARE without the meter's system title")
            ui = self._open(ui)
        assoc = parse_initiate_response(ui)
        if challenge is not None:
            if self._server_title is None or not aare.challenge:
                raise DlmsDecodeError("HLS AARE without the meter's system title or challenge")
            answer = gmac(sec.keys, sec.system_title, sec.counters.next_counter(), aare.challenge)
            self._invoke = (self._invoke + 1) % 16
            reply = await self._request(
                build_action_request(self._invoke, 15, ASSOCIATION_LN, 1, encode(Data(Tag.OCTET_STRING, answer)))
            )
            try:
                result = parse_action_response(reply)
            except DlmsDecodeError:
                raise
            except DlmsError as e:  # the meter did not accept our f(StoC): it does not hold our keys
                raise CipherError(f"meter refused our HLS-GMAC answer ({e}): wrong EK/AK or system title") from None
            if result is None or result.tag is not Tag.OCTET_STRING or not isinstance(result.value, bytes):
                raise CipherError("meter did not answer the HLS-GMAC challenge")
            check_gmac(sec.keys, self._server_title, challenge, result.value)
        return assoc

    async def get(self, class_id: int, obis: tuple[int, ...], attribute: int) -> Data:
        """GET one attribute; follows GET-Response-With-Datablock until the last block."""
        self._invoke = (self._invoke + 1) % 16
        invoke = self._invoke
        result = parse_get_response(await self._request(build_get_request(invoke, class_id, obis, attribute)))
        if result.data is not None:
            return result.data
        raw = bytearray()
        expected = 1
        for _ in range(MAX_BLOCKS):
            if result.block is None or result.block_number != expected:
                raise DlmsDecodeError(f"data block {result.block_number} out of order (expected {expected})")
            raw += result.block
            if result.last:
                return decode_all(bytes(raw))
            result = parse_get_response(await self._request(build_get_next(invoke, expected)))
            expected += 1
        raise DlmsError("too many data blocks")

    async def get_register(self, class_id: int, obis: tuple[int, ...]) -> tuple[Data, int, int]:
        """Value (attribute 2) and scaler/unit (attribute 3) of a Register or Extended register."""
        value = await self.get(class_id, obis, 2)
        su = await self.get(class_id, obis, 3)
        if (
            su.tag is not Tag.STRUCTURE
            or not isinstance(su.value, tuple)
            or len(su.value) != 2
            or not isinstance(su.value[0], Data)
            or not isinstance(su.value[1], Data)
            or su.value[0].tag is not Tag.INTEGER
            or su.value[1].tag is not Tag.ENUM
        ):
            raise DlmsDecodeError(f"scaler_unit of {'.'.join(map(str, obis))} is not structure{{integer, enum}}")
        scaler, unit = su.value[0].value, su.value[1].value
        assert isinstance(scaler, int)
        assert isinstance(unit, int)
        return value, scaler, unit

    async def release(self) -> None:
        check_rlre(await self._t.request(build_rlrq()))
        self.association = None
