"""A-XDR, APDU, wrapper and HDLC codecs: golden vectors, Hypothesis round trips, tamper and garbage tests."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.dlms import apdu, axdr, hdlc, wrapper
from edge.dlms.axdr import Data, Tag
from edge.dlms.errors import AssociationRejectedError, DataAccessError, DlmsDecodeError

INT_RANGES = {
    Tag.INTEGER: (-(2**7), 2**7 - 1),
    Tag.LONG: (-(2**15), 2**15 - 1),
    Tag.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    Tag.LONG64: (-(2**63), 2**63 - 1),
    Tag.UNSIGNED: (0, 2**8 - 1),
    Tag.ENUM: (0, 2**8 - 1),
    Tag.LONG_UNSIGNED: (0, 2**16 - 1),
    Tag.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    Tag.LONG64_UNSIGNED: (0, 2**64 - 1),
}


def scalars() -> st.SearchStrategy[Data]:
    ints = st.sampled_from(list(INT_RANGES)).flatmap(
        lambda t: st.integers(*INT_RANGES[t]).map(lambda v: Data(t, v))
    )
    return st.one_of(
        st.just(Data(Tag.NULL)),
        st.booleans().map(lambda b: Data(Tag.BOOLEAN, b)),
        ints,
        st.binary(max_size=300).map(lambda b: Data(Tag.OCTET_STRING, b)),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
            lambda s: Data(Tag.VISIBLE_STRING, s)
        ),
        st.floats(width=32, allow_nan=False).map(lambda f: Data(Tag.FLOAT32, f)),
        st.floats(allow_nan=False).map(lambda f: Data(Tag.FLOAT64, f)),
        st.binary(min_size=12, max_size=12).map(lambda b: Data(Tag.DATE_TIME, b)),
        st.integers(0, 64).flatmap(
            lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(
                lambda b: Data(Tag.BIT_STRING, (n, b))
            )
        ),
    )


data_values = st.recursive(
    scalars(),
    lambda children: st.lists(children, max_size=6).flatmap(
        lambda items: st.sampled_from([Tag.ARRAY, Tag.STRUCTURE]).map(lambda t: Data(t, tuple(items)))
    ),
    max_leaves=20,
)


@given(data_values)
def test_axdr_round_trip(d: Data) -> None:
    assert axdr.decode_all(axdr.encode(d)) == d


@given(st.integers(0, 2**32 - 1))
def test_length_round_trip(n: int) -> None:
    raw = axdr.encode_length(n)
    assert axdr.decode_length(raw + b"\x99", 0) == (n, len(raw))


def test_axdr_golden() -> None:
    # scaler_unit of an energy register in kWh resolution: structure { integer 3, enum 30 (Wh) }
    su = Data(Tag.STRUCTURE, (Data(Tag.INTEGER, 3), Data(Tag.ENUM, 30)))
    assert axdr.encode(su).hex() == "02020f03161e"
    assert axdr.encode(Data(Tag.LONG64_UNSIGNED, 5008479)).hex() == "1500000000004c6c5f"
    assert axdr.decode_all(bytes.fromhex("05ffffed78")) == Data(Tag.DOUBLE_LONG, -4744)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_axdr_garbage_only_raises_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DlmsDecodeError):
        axdr.decode_all(raw)


@given(data_values, st.data())
def test_axdr_truncation_is_detected(d: Data, data: st.DataObject) -> None:
    raw = axdr.encode(d)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DlmsDecodeError):
        axdr.decode_all(raw[:cut])


def test_crc16_x25_check_value() -> None:
    assert hdlc.crc16(b"123456789") == 0x906E


def test_hdlc_golden_snrm_and_gurux_ua() -> None:
    # Our SNRM to logical 1 / physical 17 from client 16 (accepted by gurux-dlms), and gurux's UA reply.
    snrm = hdlc.HdlcClient(16, 1, 17).snrm()
    assert snrm.hex() == "7ea00802232193bd647e"
    ua = hdlc.decode_frame(bytes.fromhex("7ea01f21022373e6c781801205012006012007040000000108040000000145277e"))
    assert ua.control == hdlc.UA
    assert hdlc.parse_ua_parameters(ua.info) == {5: 32, 6: 32, 7: 1, 8: 1}
    link = hdlc.HdlcClient(16, 1, 17)
    link.on_connect_reply(ua)
    assert (link.max_info_tx, link.max_info_rx) == (32, 32)


@given(
    st.integers(0, 127),
    st.integers(0, 0x3FFF),
    st.integers(0, 0x3FFF),
    st.integers(0, 255),
    st.binary(max_size=200),
    st.booleans(),
)
def test_hdlc_frame_round_trip(client: int, logical: int, physical: int, control: int, info: bytes, seg: bool) -> None:
    f = hdlc.Frame(hdlc.encode_address(logical, physical), hdlc.encode_address(client), control, info, seg)
    raw = hdlc.encode_frame(f)
    assert hdlc.decode_frame(raw) == f
    assert hdlc.decode_address(f.destination) == (logical, physical)
    assert hdlc.decode_address(f.source) == (client, None)


@given(st.binary(min_size=1, max_size=100), st.data())
def test_hdlc_corruption_is_detected(info: bytes, data: st.DataObject) -> None:
    raw = bytearray(hdlc.encode_frame(hdlc.Frame(hdlc.encode_address(1, 17), hdlc.encode_address(16), 0x10, info)))
    i = data.draw(st.integers(1, len(raw) - 2))
    raw[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DlmsDecodeError):
        hdlc.decode_frame(bytes(raw))


@given(st.lists(st.binary(max_size=150), min_size=1, max_size=5), st.binary(max_size=20), st.data())
def test_hdlc_stream_decoder_survives_chunking_and_garbage(
    infos: list[bytes], junk: bytes, data: st.DataObject
) -> None:
    frames = [hdlc.Frame(hdlc.encode_address(1, 17), hdlc.encode_address(16), 0x10 | (i << 1), info)
              for i, info in enumerate(infos)]
    stream = junk.replace(b"\x7e", b"") + b"".join(hdlc.encode_frame(f) for f in frames)
    dec = hdlc.FrameDecoder()
    out: list[hdlc.Frame] = []
    pos = 0
    while pos < len(stream):
        n = data.draw(st.integers(1, 40))
        out += dec.feed(stream[pos : pos + n])
        pos += n
    assert out == frames


def test_hdlc_client_segments_and_reassembles() -> None:
    link = hdlc.HdlcClient(16, 1, 17, max_info_tx=32, max_info_rx=32)
    apdu_in = bytes(range(70))
    first = hdlc.decode_frame(link.send(apdu_in))
    assert first.segmented
    assert first.info == hdlc.LLC_REQUEST + apdu_in[:29]
    server_addr, client_addr = link.remote, link.local
    rr = hdlc.Frame(client_addr, server_addr, (1 << 5) | 0x10 | 0x01)
    nxt, done = link.receive(rr)
    assert done is None
    assert nxt is not None
    second = hdlc.decode_frame(nxt)
    assert second.ns == 1
    assert second.segmented
    # Server answers in two segments; the client acknowledges the first with RR(N(R)=1).
    reply = hdlc.LLC_RESPONSE + b"\xc4\x01\xc1\x00" + axdr.encode(Data(Tag.OCTET_STRING, bytes(40)))
    seg1 = hdlc.Frame(client_addr, server_addr, 0x10, reply[:32], segmented=True)
    ack, done = link.receive(seg1)
    assert done is None
    assert ack is not None
    assert hdlc.decode_frame(ack).nr == 1
    seg2 = hdlc.Frame(client_addr, server_addr, 0x10 | (1 << 1), reply[32:])
    _, done = link.receive(seg2)
    assert done == reply[3:]
    with pytest.raises(DlmsDecodeError, match="sequence"):
        link.receive(seg2)  # a repeated N(S) is a sequence error


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=500), st.data())
def test_wrapper_round_trip_in_chunks(src: int, dst: int, payload: bytes, data: st.DataObject) -> None:
    raw = wrapper.encode_wrapper(src, dst, payload) * 2
    dec = wrapper.WrapperDecoder()
    out = []
    pos = 0
    while pos < len(raw):
        n = data.draw(st.integers(1, 64))
        out += dec.feed(raw[pos : pos + n])
        pos += n
    assert out == [wrapper.WrapperPdu(src, dst, payload)] * 2


def test_aarq_golden() -> None:
    # Lowest-level security AARQ as accepted by gurux-dlms.
    assert apdu.build_aarq().hex() == "601da109060760857405080101be10040e01000000065f1f0400001014ffff"
    lls = apdu.build_aarq(b"12345678")
    assert b"\x8b\x07\x60\x85\x74\x05\x08\x02\x01" in lls
    assert b"\xac\x0a\x80\x0812345678" in lls


def test_aare_parse_accept_and_reject() -> None:
    # Captured from gurux-dlms: accepted (lowest level) and rejected (wrong LLS password).
    ok = bytes.fromhex("6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f0400001014ffff0007")
    assoc = apdu.parse_aare(ok)
    assert assoc.conformance & apdu.CONFORMANCE_GET
    assert (assoc.max_pdu, assoc.dlms_version) == (0xFFFF, 6)
    rejected = bytes.fromhex("6129a109060760857405080101a203020101a305a10302010dbe10040e0800065f1f0400001014ffff0007")
    with pytest.raises(AssociationRejectedError, match="authentication failure"):
        apdu.parse_aare(rejected)


def test_get_response_variants() -> None:
    req = apdu.build_get_request(1, 3, (1, 0, 1, 8, 0, 255), 2)
    assert req.hex() == "c001c100030100010800ff0200"
    normal = apdu.parse_get_response(bytes.fromhex("c401c100") + axdr.encode(Data(Tag.DOUBLE_LONG_UNSIGNED, 7)))
    assert normal.data == Data(Tag.DOUBLE_LONG_UNSIGNED, 7)
    with pytest.raises(DataAccessError, match="object undefined"):
        apdu.parse_get_response(bytes.fromhex("c401c10104"))
    block = apdu.parse_get_response(bytes.fromhex("c402c100000000010003aabbcc"))
    assert (block.block, block.block_number, block.last) == (b"\xaa\xbb\xcc", 1, False)
    assert apdu.build_get_next(1, 1).hex() == "c002c100000001"


def test_float_values_stay_exact_in_axdr() -> None:
    d = axdr.decode_all(axdr.encode(Data(Tag.FLOAT64, math.pi)))
    assert d.value == math.pi
