"""Real meters' telegrams (tests/edge/p1/real_telegrams.py) through the edge's own P1 parser: the framer finds each
one in a chunked stream behind garbage and a cut-off telegram, the CRC is checked wherever a telegram carries one,
and the decoded Wh / W are ``dsmr_parser``'s values (the oracle) for the variant and meter map that read the meter.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from dsmr_parser.parsers import TelegramParser
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.maps import MeterMap
from edge.meters.p1_reader import P1MeterReader, name_stream, registers
from edge.p1.errors import CrcError, TelegramError
from edge.p1.framing import PlainFramer, Truncated
from edge.p1.telegram import P1Register, TelegramDecoder, check_crc
from edge.p1.variants import VARIANTS
from tests.edge.p1.real_telegrams import REAL_TELEGRAMS, RealTelegram
from tests.edge.p1.test_oracle import ORACLE

BY_NAME = {t.name: t for t in REAL_TELEGRAMS}
ELECTRICITY = [t for t in REAL_TELEGRAMS if t.variant is not None and t.name != "easymeter-q3da"]
_END = re.compile(rb"![0-9A-Fa-f]{0,4}\r\n")

#: variants no shipped map reads (their telegrams are read with these registers, as a map for them would)
_REGISTERS: dict[str, tuple[P1Register, ...]] = {
    "austria-sagemcom": (P1Register("energy_import", ("1-0:1.8.0",), (), "Wh"),
                         P1Register("energy_export", ("1-0:2.8.0",), (), "Wh"),
                         P1Register("power_active", ("1-0:1.7.0",), ("1-0:2.7.0",), "W")),
    "iskra-ie": (P1Register("energy_import", ("1-0:1.8.1", "1-0:1.8.2"), (), "kWh"),
                 P1Register("energy_export", ("1-0:2.8.1", "1-0:2.8.2"), (), "kWh"),
                 P1Register("power_active", ("1-0:1.7.0",), ("1-0:2.7.0",), "kW")),
}


def frame_of(t: RealTelegram) -> bytes:
    """The telegram as the framer must cut it: from '/' to the end of the CRC line (a gateway's tail left out)."""
    m = _END.search(t.data)
    assert m is not None
    return t.data[: m.end()]


def telegram_registers(t: RealTelegram, maps: dict[str, MeterMap]) -> tuple[P1Register, ...]:
    if t.map_id is not None:
        return tuple(registers(maps[t.map_id]))
    assert t.variant is not None
    return _REGISTERS[t.variant]


def test_every_capture_names_its_source_and_is_unique() -> None:
    assert len(BY_NAME) == len(REAL_TELEGRAMS) >= 13
    for t in REAL_TELEGRAMS:
        assert t.source.startswith("github.com/"), t.name
        assert t.data.startswith(b"/"), t.name
        assert b"\r\n" in t.data, t.name  # line endings as the meter sent them


@pytest.mark.parametrize("t", REAL_TELEGRAMS, ids=lambda t: t.name)
def test_framer_finds_it_behind_garbage_and_a_cut_off_telegram(t: RealTelegram) -> None:
    frame = frame_of(t)
    half = len(frame) // 2
    stream = b"\x00\xff noise" + frame[half:] + frame[:half] + t.data + frame
    items = PlainFramer().feed(stream)
    assert isinstance(items[0], Truncated)  # the head of a telegram cut off by the next '/'
    assert items[1:] == [frame, frame]


@settings(max_examples=60, deadline=None)
@given(t=st.sampled_from(REAL_TELEGRAMS), cuts=st.lists(st.integers(0, 4_000), max_size=30))
def test_framer_finds_it_in_any_chunks(t: RealTelegram, cuts: list[int]) -> None:
    stream = b"tail of an earlier one)\r\n!1A2B\r\n" + t.data + t.data
    points = sorted({c % (len(stream) + 1) for c in cuts})
    framer = PlainFramer()
    items = [i for a, b in zip([0, *points], [*points, len(stream)], strict=True) for i in framer.feed(stream[a:b])]
    assert items == [frame_of(t), frame_of(t)]


@pytest.mark.parametrize("t", REAL_TELEGRAMS, ids=lambda t: t.name)
def test_crc_is_checked_where_the_telegram_carries_one(t: RealTelegram) -> None:
    frame = frame_of(t)
    has_crc = not frame.endswith(b"!\r\n")
    if t.variant is not None and VARIANTS[t.variant].crc:
        assert has_crc
    if not has_crc:
        with pytest.raises(CrcError, match="no CRC"):
            check_crc(frame)
        return
    check_crc(frame)
    at = frame.index(b"\r\n") + 10  # a byte inside the first data line
    flipped = frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1 :]
    with pytest.raises(CrcError, match="CRC mismatch: telegram says"):
        check_crc(flipped)
    if t.variant is not None:  # the decoder refuses it too, whether or not the variant requires a CRC
        with pytest.raises(CrcError, match="CRC mismatch"):
            TelegramDecoder(VARIANTS[t.variant], ()).decode(flipped)


def _oracle_spec(variant: str) -> dict[str, Any]:
    """dsmr_parser's spec of the variant, for the plaintext (an encrypted variant's telegram after decryption)."""
    return {**ORACLE[variant], "general_global_cipher": False}


def _oracle_value(parsed: Any, spec: dict[str, Any], code: str) -> Decimal:
    c = code.partition(":")[2]
    ref = next(o["obis_reference"] for o in spec["objects"] if re.match(o["obis_reference"], f"1-0:{c}(0)\r\n"))
    value = parsed[ref].values[0]
    return Decimal(value["value"]) * (1000 if value["unit"] in ("kWh", "kW") else 1)


@pytest.mark.parametrize("t", ELECTRICITY, ids=lambda t: t.name)
def test_values_are_dsmr_parsers(maps: dict[str, MeterMap], t: RealTelegram) -> None:
    assert t.variant is not None
    spec = _oracle_spec(t.variant)
    parsed = TelegramParser(spec, apply_checksum_validation=False).parse(frame_of(t).decode("latin-1"))
    regs = telegram_registers(t, maps)
    values = TelegramDecoder(VARIANTS[t.variant], regs).decode(frame_of(t))
    assert {"energy_import", "energy_export", "power_active"} <= {r.name for r in regs}
    for r in regs:
        expected = sum((_oracle_value(parsed, spec, c) for c in r.plus), Decimal(0))
        expected -= sum((_oracle_value(parsed, spec, c) for c in r.minus), Decimal(0))
        assert values.values[r.name] == expected, (t.name, r.name)
    stamp = getattr(parsed, "P1_MESSAGE_TIMESTAMP", None)
    if stamp is None or stamp.value is None:
        assert values.meter_time_ms is None
    else:
        assert values.meter_time_ms == int(stamp.value.timestamp()) * 1000


@pytest.mark.parametrize("t", [t for t in REAL_TELEGRAMS if t.map_id is not None], ids=lambda t: t.name)
def test_scan_names_the_map_that_reads_it(maps: dict[str, MeterMap], t: RealTelegram) -> None:
    hit = name_stream(b"\xff\x00" + t.data, maps)
    assert hit is not None
    assert hit.map_ids == (t.map_id,), hit.detail
    assert f"P1 {t.variant} telegram" in hit.detail


def test_a_telegram_no_map_reads_fails_with_the_reason(maps: dict[str, MeterMap]) -> None:
    heat = BY_NAME["warmtelink-heat-unpadded-crc"]
    hit = name_stream(heat.data, maps)
    assert hit is not None
    assert hit.map_ids == ()
    assert "no electricity energy register" in hit.detail
    decoder = TelegramDecoder(VARIANTS["dsmr5"], registers(maps["dsmr5-generic"]))
    with pytest.raises(TelegramError, match=r"no register 1-0:1\.8\.1 \(it carries no electricity energy register"):
        decoder.decode(frame_of(heat))
    # an import-only EasyMeter Q3DA has no export register: the two-way map refuses it and says why
    q3da = BY_NAME["easymeter-q3da"]
    decoder = TelegramDecoder(VARIANTS["q3d"], registers(maps["easymeter-q3d"]))
    with pytest.raises(TelegramError, match=r"no register 1-0:2\.8\.0 \(it carries 1-0:1\.8\.0\)"):
        decoder.decode(frame_of(q3da))
    hit = name_stream(q3da.data, maps)
    assert hit is not None
    assert hit.map_ids == ()  # the two-way map's probe names the Q3DB only
    assert "P1 q3d telegram, header /ESY5Q3DA1004" in hit.detail
    # a total-register telegram (1.8.0 only) read with a tariff map (1.8.1 + 1.8.2) names what it has instead
    decoder = TelegramDecoder(VARIANTS["dsmr2.2"], registers(maps["dsmr22-generic"]))
    with pytest.raises(TelegramError, match=r"no register 1-0:1\.8\.1 \(it carries 1-0:1\.8\.0, 1-0:2\.8\.0\)"):
        decoder.decode(frame_of(BY_NAME["easymeter-q3db"]))


@pytest.mark.parametrize("t", ELECTRICITY, ids=lambda t: t.name)
def test_line_endings_rewritten_to_lf(maps: dict[str, MeterMap], t: RealTelegram) -> None:
    """What a dongle or a terminal that rewrites CR LF gives: still framed; read where there is no CRC to break,
    refused with the reason where there is."""
    assert t.variant is not None
    lf = frame_of(t).replace(b"\r\n", b"\n")
    assert PlainFramer().feed(b"\n\n" + lf + lf[:20]) == [lf]
    decoder = TelegramDecoder(VARIANTS[t.variant], telegram_registers(t, maps))
    if lf.endswith(b"!\n"):
        assert decoder.decode(lf).values == decoder.decode(frame_of(t)).values
    else:
        with pytest.raises(CrcError, match="lines end in LF alone"):
            decoder.decode(lf)


@pytest.mark.parametrize("t", [t for t in ELECTRICITY if t.map_id is not None], ids=lambda t: t.name)
async def test_the_reader_gives_integer_wh_and_w(maps: dict[str, MeterMap], t: RealTelegram) -> None:
    """Through the meter reader, as the poller reads it: integer Wh / W, rounded once (half to even) from the
    telegram's exact decimals (the Q3D's power has two)."""
    assert t.map_id is not None
    meter_map = maps[t.map_id]
    reader = P1MeterReader(MeterConfig(serial="REAL-1", bus="p1", model=t.map_id, stale_after_s=60), meter_map,
                           BusConfig(name="p1", kind=BusKind.P1_TCP, host="127.0.0.1", port=9, timeout_s=0.5),
                           clock=lambda: 1_000)
    try:
        reader.feed(b"\x00" + t.data)
        assert reader.counters.telegrams == 1, reader.last_problem
        sample = await reader.read()
    finally:
        await reader.close()
    exact = TelegramDecoder(VARIANTS[meter_map.p1_variant or ""], registers(meter_map)).decode(frame_of(t)).values
    assert (sample.import_wh, sample.export_wh, sample.power_w) == (
        round(exact["energy_import"]), round(exact["energy_export"]), round(exact["power_active"]))
    assert all(isinstance(v, int) for v in (sample.import_wh, sample.export_wh, sample.power_w))
