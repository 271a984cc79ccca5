"""The P1 codec without I/O: CRC16, framing (truncated telegrams), decryption, exact conversion, maps as data."""

from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from dsmr_parser.parsers import TelegramParser
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import ConfigError
from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.maps import MeterMap, load_map
from edge.meters.p1_reader import P1MeterReader, name_stream, registers
from edge.p1.crc import crc16
from edge.p1.errors import CrcError, DecryptError, TelegramError
from edge.p1.framing import CipherFramer, PlainFramer, Truncated
from edge.p1.telegram import P1Register, TelegramDecoder, check_crc, decrypt
from edge.p1.variants import SMARTY_AUTHENTICATION_KEY, VARIANTS
from edge.simulator.p1 import Registers, encrypt, telegram
from tests.edge.p1.p1_helpers import KEY, VARIANT_MAPS

WH = st.integers(0, 999_999_999)  # the telegram's F9(3,3) register: 999999.999 kWh


@given(st.binary(max_size=600))
def test_crc16_is_the_one_dsmr_parser_checks(data: bytes) -> None:
    assert crc16(data) == TelegramParser.crc16(data.decode("latin-1"))


@settings(max_examples=60, deadline=None)
@given(variant=st.sampled_from(sorted(VARIANT_MAPS)), imp=WH, exp=WH, power=st.integers(-99_999, 99_999))
def test_each_reading_is_the_registers_exactly(
    maps: dict[str, MeterMap], variant: str, imp: int, exp: int, power: int
) -> None:
    if variant == "dsmr2.2":  # 5.3 kWh digits, power in 10 W
        imp, exp, power = imp % 100_000_000, exp % 100_000_000, power // 10 * 10
    meter_map = maps[VARIANT_MAPS[variant]]
    plain = telegram(variant, Registers(imp, exp, power), when_s=time.time())
    decoder = TelegramDecoder(VARIANTS[meter_map.p1_variant or ""], registers(meter_map))
    values = decoder.decode(plain).values
    assert values["energy_import"] == imp  # a Fraction equal to the integer: exact, no float anywhere
    assert values["energy_export"] == exp
    assert values["power_active"] == power


def test_meter_timestamp_is_kept() -> None:
    when = 1_796_601_346  # 2026-12-06 23:55:46 UTC, winter time
    meter_map = load_map(Path("firmware-config/meters/iskraemeco-am550-nl.toml"))
    decoder = TelegramDecoder(VARIANTS["dsmr5"], registers(meter_map))
    assert decoder.decode(telegram("dsmr5", Registers(1, 2, 3), when_s=when)).meter_time_ms == when * 1000
    summer = 1_780_000_000  # June: the S flag
    assert decoder.decode(telegram("dsmr5", Registers(1, 2, 3), when_s=summer)).meter_time_ms == summer * 1000


def test_crc_mismatch_and_missing_register_are_errors() -> None:
    plain = telegram("dsmr5", Registers(1000, 2000, 5), when_s=time.time())
    check_crc(plain)
    bad = plain.replace(b"1-0:1.8.1(0", b"1-0:1.8.1(9")
    with pytest.raises(CrcError):
        check_crc(bad)
    meter_map = load_map(Path("firmware-config/meters/iskraemeco-am550-nl.toml"))
    decoder = TelegramDecoder(VARIANTS["dsmr5"], registers(meter_map))
    body = plain[: plain.rfind(b"!") + 1].replace(b"1-0:2.8.2(", b"1-0:9.9.9(")
    with pytest.raises(TelegramError, match=r"no register 1-0:2\.8\.2 \(it carries 1-0:1\.8\.1, 1-0:1\.8\.2, "
                                            r"1-0:2\.8\.1\)"):
        decoder.decode(body + f"{crc16(body):04X}\r\n".encode())
    body = plain[: plain.rfind(b"!") + 1].replace(b"*kWh)\r\n1-0:1.8.2", b"*MWh)\r\n1-0:1.8.2", 1)
    with pytest.raises(TelegramError, match="in 'MWh'"):
        decoder.decode(body + f"{crc16(body):04X}\r\n".encode())
    body = plain[: plain.rfind(b"!") + 1].replace(b"*kWh)\r\n1-0:1.8.2", b"kWh)\r\n1-0:1.8.2", 1)
    with pytest.raises(TelegramError, match=r"register 1-0:1\.8\.1 has no '\*unit' \('\d+\.\d+kWh'\)"):
        decoder.decode(body + f"{crc16(body):04X}\r\n".encode())


def test_framer_drops_truncated_telegrams_and_keeps_whole_ones() -> None:
    a = telegram("dsmr5", Registers(1000, 2000, 5), when_s=time.time())
    b = telegram("dsmr5", Registers(1001, 2000, 5), when_s=time.time())
    framer = PlainFramer()
    items = framer.feed(b"tail of an earlier one!ABCD\r\n" + a[:100])
    assert items == []  # the tail before the first '/' is skipped; the start of `a` waits for its end
    items = framer.feed(b + a[:-3])
    assert isinstance(items[0], Truncated)  # `a` was cut off by the start of `b`
    assert items[1:] == [b]
    assert framer.feed(a[-3:]) == [a]  # CRC and CR LF in a separate chunk
    one_byte_at_a_time = [i for ch in b for i in framer.feed(bytes([ch]))]
    assert one_byte_at_a_time == [b]


def test_encrypted_frames_right_and_wrong_key() -> None:
    plain = telegram("luxembourg-smarty", Registers(5_000, 6_000, 7), when_s=time.time())
    frames = encrypt(plain, KEY, 41) + encrypt(plain, KEY, 42)
    out = CipherFramer().feed(b"\x00\x13" + frames[:50]) + CipherFramer().feed(frames)
    assert len(out) == 2
    assert all(isinstance(f, bytes) for f in out)
    assert decrypt(out[0], KEY, SMARTY_AUTHENTICATION_KEY) == plain  # type: ignore[arg-type]
    with pytest.raises(DecryptError, match="wrong key"):
        decrypt(out[1], bytes(16), SMARTY_AUTHENTICATION_KEY)  # type: ignore[arg-type]
    damaged = bytearray(out[1])  # type: ignore[arg-type]
    damaged[40] ^= 1
    with pytest.raises(DecryptError):
        decrypt(bytes(damaged), KEY, SMARTY_AUTHENTICATION_KEY)


def test_name_stream_names_variant_and_model(maps: dict[str, MeterMap]) -> None:
    for variant, map_id in VARIANT_MAPS.items():
        plain = telegram(variant, Registers(1, 2, 3), when_s=time.time())
        data = encrypt(plain, KEY, 7) if variant == "luxembourg-smarty" else plain
        hit = name_stream(b"garbage" + data, maps)
        assert hit is not None
        assert hit.map_ids == (map_id,), variant
    unknown = telegram("dsmr5", Registers(1, 2, 3), when_s=time.time(), header="/ABC5\\UNKNOWN")
    hit = name_stream(unknown, maps)
    assert hit is not None
    assert hit.map_ids == ("dsmr5-generic",)  # DSMR 4 and 5 require their registers of every meter
    assert "P1 dsmr5 telegram, header /ABC5" in hit.detail
    unknown = telegram("dsmr4", Registers(1, 2, 3), when_s=time.time(), header="/XMX5LGBBFG1012530239")
    hit = name_stream(unknown, maps)  # a Landis+Gyr ZCF110 (openHAB's capture): no specific map names it
    assert hit is not None
    assert hit.map_ids == ("dsmr4-generic",)
    assert name_stream(b"\x00\x01 nothing here", maps) is None
    # a telegram damaged on the line is told by its content (it used to pass for a DSMR 2.2 one, without a CRC, and
    # be named dsmr22-generic) and no map is named, with the reason
    good = telegram("dsmr5", Registers(1, 2, 3), when_s=time.time(), header="/ISk5\\2M550E-1011")
    hit = name_stream(good.replace(b"1-0:1.8.1(0", b"1-0:1.8.1(9"), maps)
    assert hit is not None
    assert hit.map_ids == ()
    assert "P1 dsmr5 telegram" in hit.detail
    assert "CRC mismatch" in hit.detail
    # a map is named only if it reads the telegram: a DSMR 5 heat meter (no electricity register) gets none
    body = b"/NWA-WARMTELINK\r\n\r\n1-3:0.2.8(50)\r\n0-1:24.2.1(260215200523W)(240.860*GJ)\r\n!"
    hit = name_stream(body + f"{crc16(body):04X}\r\n".encode(), maps)
    assert hit is not None
    assert hit.map_ids == ()
    assert "map dsmr5-generic does not read it: telegram has no register 1-0:1.8.1 (it carries no electricity" in \
        hit.detail


def _map(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "m.toml"
    p.write_text('[meter]\nmodel = "X"\nprotocol = "p1"\n' + body)
    return p


def test_p1_map_errors_name_the_line(tmp_path: Path) -> None:
    ok_measure = ('[[probe]]\nheader = "/X"\n[measurements.energy_import]\nobis = ["1-0:1.8.1"]\nunit = "kWh"\n'
                  '[measurements.energy_export]\nobis = "1-0:2.8.1"\nunit = "kWh"\n')
    assert load_map(_map(tmp_path, '[p1]\nvariant = "dsmr5"\n' + ok_measure)).p1_variant == "dsmr5"
    with pytest.raises(ConfigError, match=r"m.toml:5: p1.variant: unknown P1 variant 'dsmr9'"):
        load_map(_map(tmp_path, '[p1]\nvariant = "dsmr9"\n' + ok_measure))
    with pytest.raises(ConfigError, match="missing \\[p1\\] table"):
        load_map(_map(tmp_path, ok_measure))
    with pytest.raises(ConfigError, match=r"variant 'dsmr5' has no register 1-0:2\.8\.0"):
        load_map(_map(tmp_path, '[p1]\nvariant = "dsmr5"\n' + ok_measure.replace('"1-0:2.8.1"', '"1-0:2.8.0"')))
    with pytest.raises(ConfigError, match="a P1 register's unit"):
        load_map(_map(tmp_path, '[p1]\nvariant = "dsmr5"\n' + ok_measure.replace('"kWh"', '"MWh"', 1)))
    with pytest.raises(ConfigError, match="either 'header' or 'system_title'"):
        load_map(_map(tmp_path, '[p1]\nvariant = "dsmr5"\n' + ok_measure.replace('header = "/X"', "")))


def _with_crc(body: bytes, digits: str) -> bytes:
    """``body`` (up to and including '!') with its CRC written as ``digits`` formats it, then CR LF."""
    return body + format(crc16(body), digits).encode() + b"\r\n"


def test_crc_without_leading_zeros_lowercase_and_lf_alone_end_the_telegram() -> None:
    """A Warmtelink writes its CRC without leading zeros (``!B9F``): the framer used to take it for a CRC still on
    its way (``$`` also matches before the final LF) and held the telegram until the next one cut it off."""
    body = next(b for n in range(10_000) if crc16(b := f"/NWA-WARMTELINK\r\n\r\n0-0:96.1.1({n})\r\n!".encode())
                < 0x1000)  # a CRC with a leading zero digit
    crc = crc16(body)
    short = body + f"{crc:X}".encode() + b"\r\n"
    assert len(short) < len(body) + 6
    assert PlainFramer().feed(short) == [short]
    check_crc(short)
    for frame in (_with_crc(body, "04x"), _with_crc(body, "04X")[:-2] + b"\n"):
        assert PlainFramer().feed(b"junk" + frame) == [frame]
        check_crc(frame)
    framer = PlainFramer()  # the end in two chunks, cut right after the short CRC
    assert framer.feed(short[:-2]) == []
    assert framer.feed(short[-2:]) == [short]
    with pytest.raises(CrcError, match="not 1 to 4 hexadecimal digits"):
        check_crc(body + b"12G4\r\n")
    lf_only = _with_crc(body, "04X").replace(b"\r\n", b"\n")
    with pytest.raises(CrcError, match="lines end in LF alone"):
        check_crc(lf_only)


def test_lines_ended_by_lf_alone_obis_with_billing_period_and_signed_values_are_read() -> None:
    """An LF-only DSMR 2.2 telegram used to be one long 'line' (no register found); EasyMeter's ``1-0:1.8.0*255(...)``
    lines were skipped; a signed value was 'not a number' (dsmr_parser reads all three)."""
    regs = (P1Register("energy_import", ("1-0:1.8.1", "1-0:1.8.2"), (), "kWh"),
            P1Register("energy_export", ("1-0:2.8.1", "1-0:2.8.2"), (), "kWh"),
            P1Register("power_active", ("1-0:1.7.0",), ("1-0:2.7.0",), "kW"))
    body = (b"/ISk5\\2MT382-1004\n\n1-0:1.8.1(00001.001*kWh)\n1-0:1.8.2(00001.001*kWh)\n1-0:2.8.1(00000.500*kWh)\n"
            b"1-0:2.8.2*255(00000.250*kWh)\n1-0:1.7.0(-0001.01*kW)\n1-0:2.7.0(0000.00*kW)\n!\n")
    values = TelegramDecoder(VARIANTS["dsmr2.2"], regs).decode(body).values
    assert values == {"energy_import": 2002, "energy_export": 750, "power_active": -1010}
    spec_form = body.replace(b"1-0:1.8.2(", b"1-0:1.8.2.255(")  # as the DSMR 4.0 standard's example writes it
    assert TelegramDecoder(VARIANTS["dsmr2.2"], regs).decode(spec_form).values == values
    assert values == TelegramDecoder(VARIANTS["dsmr2.2"], regs).decode(body.replace(b"\n", b"\r\n")).values


@given(st.from_regex(r"-?[0-9]{1,15}(\.[0-9]{1,9})?", fullmatch=True), st.sampled_from(["kWh", "Wh", "kW", "W"]))
def test_every_decimal_is_read_exactly(number: str, unit: str) -> None:
    body = f"/X\r\n\r\n1-0:1.7.0({number}*{unit})\r\n!".encode()
    values = TelegramDecoder(VARIANTS["dsmr5"], (P1Register("p", ("1-0:1.7.0",), (), unit),)).decode(
        body + f"{crc16(body):04X}\r\n".encode()).values
    assert values["p"] == Fraction(Decimal(number)) * (1000 if unit.startswith("k") else 1)


def test_a_crc_is_checked_even_where_the_variant_does_not_require_one(maps: dict[str, MeterMap]) -> None:
    """Iskra IE telegrams carry a CRC although the variant (like dsmr_parser's) does not require one: a damaged
    telegram used to pass unchecked, and became the reading."""
    body = b"/ISk5\\2MT382-1004\r\n\r\n1-0:1.8.1(00001.001*kWh)\r\n1-0:1.8.2(00001.001*kWh)\r\n" \
           b"1-0:2.8.1(00001.001*kWh)\r\n1-0:2.8.2(00001.001*kWh)\r\n1-0:1.7.0(0001.01*kW)\r\n1-0:2.7.0(0000.00*kW)\r\n!"
    good = body + f"{crc16(body):04X}\r\n".encode()
    bad = good.replace(b"1.8.1(00001", b"1.8.1(00009")
    regs = registers(maps["dsmr22-generic"])
    for variant in ("iskra-ie", "dsmr2.2"):
        decoder = TelegramDecoder(VARIANTS[variant], regs)
        assert decoder.decode(good).values["energy_import"] == 2002
        assert decoder.decode(body + b"\r\n").values["energy_import"] == 2002  # no CRC at all: nothing to check
        with pytest.raises(CrcError, match="CRC mismatch"):
            decoder.decode(bad)
    reader = P1MeterReader(MeterConfig(serial="IE-1", bus="p1", model="dsmr22-generic"), maps["dsmr22-generic"],
                           BusConfig(name="p1", kind=BusKind.P1_TCP, host="127.0.0.1", port=1), clock=lambda: 0)
    reader.feed(bad)
    assert (reader.counters.crc_errors, reader.counters.telegrams, reader.latest) == (1, 0, None)
    reader.feed(good)
    assert (reader.counters.crc_errors, reader.counters.telegrams, reader.latest) == (1, 1, good)


def test_smarty_frame_header_is_the_real_meters() -> None:
    """The first 18 bytes of a real Smarty frame (Sagemcom T210-D, Luxembourg; openHAB's SmartyDecrypterTest
    capture, whose payload decrypts and verifies with our decrypt and the published authentication key): tag
    0xDB, title length 8, system title 'SAG' + 5 bytes, 0x82 and a two-byte length of what follows (0x02BA), then
    security control 0x30 and the frame counter. The framer cuts exactly 2 + 8 + 3 + 0x02BA bytes, and the
    simulator builds its frames the same way."""
    real_header = bytes.fromhex("DB08534147677001BD548202BA300005A8E3")
    frame = real_header + bytes(0x02BA - 5)
    assert CipherFramer().feed(b"\x00\x7e" + frame + frame[:30]) == [frame]
    assert len(frame) == 711
    with pytest.raises(DecryptError, match="does not verify"):
        decrypt(frame, KEY, SMARTY_AUTHENTICATION_KEY)
    ours = encrypt(b"/Lux5\\253663629_D\r\n\r\n!0000\r\n", KEY, 0x0005A8E3, system_title=real_header[2:10])
    assert ours[:18] == real_header[:11] + ours[11:13] + real_header[13:18]
