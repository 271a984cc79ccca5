"""GET with data blocks, against an in-memory transport that answers like a meter splitting a long value."""

from __future__ import annotations

import pytest

from edge.dlms import apdu, axdr
from edge.dlms.axdr import Data, Tag
from edge.dlms.client import DlmsClient
from edge.dlms.errors import DlmsDecodeError


class BlockMeter:
    """Answers GET-Request-Normal with block 1 and GET-Request-Next with the following blocks."""

    def __init__(self, value: Data, size: int, *, skip: bool = False) -> None:
        raw = axdr.encode(value)
        self.blocks = [raw[i : i + size] for i in range(0, len(raw), size)]
        self.requests: list[bytes] = []
        self.skip = skip

    async def request(self, req: bytes) -> bytes:
        self.requests.append(req)
        if req[:2] == b"\xc0\x01":
            n = 1
        else:
            assert req[:2] == b"\xc0\x02"
            n = int.from_bytes(req[3:7], "big") + (2 if self.skip else 1)
        block = self.blocks[n - 1]
        last = n == len(self.blocks)
        return (bytes([0xC4, 0x02, req[2], int(last)]) + n.to_bytes(4, "big") + b"\x00"
                + axdr.encode_length(len(block)) + block)


async def test_blocks_are_reassembled_in_order() -> None:
    value = Data(Tag.ARRAY, tuple(Data(Tag.DOUBLE_LONG_UNSIGNED, i) for i in range(100)))
    meter = BlockMeter(value, 64)
    got = await DlmsClient(meter).get(7, (1, 0, 99, 1, 0, 255), 2)
    assert got == value
    assert len(meter.requests) == len(meter.blocks) > 3
    assert meter.requests[1] == apdu.build_get_next(1, 1)


async def test_out_of_order_block_is_refused() -> None:
    meter = BlockMeter(Data(Tag.OCTET_STRING, bytes(300)), 50, skip=True)
    with pytest.raises(DlmsDecodeError, match="out of order"):
        await DlmsClient(meter).get(3, (1, 0, 1, 8, 0, 255), 2)
