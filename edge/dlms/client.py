"""DLMS/COSEM client over any transport that exchanges whole APDUs (TCP wrapper or HDLC): association, GET of
class 3/4 attributes with block transfer, release. The protocol logic is in the pure ``apdu`` module."""

from __future__ import annotations

from typing import Protocol

from edge.dlms.apdu import (
    CONFORMANCE_GET,
    Association,
    build_aarq,
    build_get_next,
    build_get_request,
    build_rlrq,
    check_rlre,
    parse_aare,
    parse_get_response,
)
from edge.dlms.axdr import Data, Tag, decode_all
from edge.dlms.errors import DlmsDecodeError, DlmsError

MAX_BLOCKS = 256


class ApduTransport(Protocol):
    """Carries one request APDU and returns the response APDU."""

    async def request(self, apdu: bytes) -> bytes: ...


class DlmsClient:
    def __init__(self, transport: ApduTransport) -> None:
        self._t = transport
        self._invoke = 0
        self.association: Association | None = None

    async def associate(self, password: bytes | None = None) -> Association:
        """AARQ/AARE with lowest-level security (no password) or LLS (password)."""
        assoc = parse_aare(await self._t.request(build_aarq(password)))
        if not assoc.conformance & CONFORMANCE_GET:
            raise DlmsError("meter did not grant the GET service")
        self.association = assoc
        return assoc

    async def get(self, class_id: int, obis: tuple[int, ...], attribute: int) -> Data:
        """GET one attribute; follows GET-Response-With-Datablock until the last block."""
        self._invoke = (self._invoke + 1) % 16
        invoke = self._invoke
        result = parse_get_response(await self._t.request(build_get_request(invoke, class_id, obis, attribute)))
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
            result = parse_get_response(await self._t.request(build_get_next(invoke, expected)))
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
