"""Register decoding and the integer boundary: exact, rounded once, no floats in energy, nonsense rejected."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.errors import MeterError
from edge.meters.convert import build_sample, decode_words, encode_words, physical, to_int
from edge.meters.maps import DataType, Measurement, WordOrder

RANGES = {
    DataType.U16: (0, 2**16 - 1),
    DataType.I16: (-(2**15), 2**15 - 1),
    DataType.U32: (0, 2**32 - 1),
    DataType.I32: (-(2**31), 2**31 - 1),
    DataType.U64: (0, 2**64 - 1),
}


@given(st.sampled_from(list(RANGES)), st.sampled_from(list(WordOrder)), st.data())
def test_integer_round_trip(dtype: DataType, order: WordOrder, data: st.DataObject) -> None:
    lo, hi = RANGES[dtype]
    value = data.draw(st.integers(lo, hi))
    words = encode_words(value, dtype, order)
    assert len(words) == dtype.words
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_words(words, dtype, order) == value


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(list(WordOrder)))
def test_f32_round_trip(value: float, order: WordOrder) -> None:
    assert decode_words(encode_words(value, DataType.F32, order), DataType.F32, order) == value


def test_word_order_is_register_order() -> None:
    # EM24 style: least significant register first.
    assert decode_words([0x0002, 0x0001], DataType.I32, WordOrder.LITTLE) == 0x0001_0002
    assert decode_words([0x0001, 0x0002], DataType.I32, WordOrder.BIG) == 0x0001_0002


KWH = Measurement(name="energy_import", unit="kWh", scale=Fraction(1))


def test_f32_kwh_to_wh_is_exact_then_rounded_once() -> None:
    # 1234.5677 kWh in f32 is 1234.5677490234375 -> 1234567.749... Wh -> 1234568 Wh.
    raw = decode_words(encode_words(1234.5677, DataType.F32, WordOrder.BIG), DataType.F32, WordOrder.BIG)
    value = physical(raw, KWH)
    assert isinstance(value, Fraction)
    assert to_int(value) == 1234568
    assert isinstance(to_int(value), int)


def test_scale_and_exponent() -> None:
    em24 = Measurement(name="energy_export", unit="kWh", scale=Fraction(1, 10))
    assert to_int(physical(123456, em24)) == 12_345_600
    sunspec = Measurement(name="power_active", unit="W", scale=Fraction(1))
    assert to_int(physical(-1234, sunspec, exponent=-1)) == -123  # half to even: -123.4 -> -123
    assert to_int(physical(25, sunspec, exponent=-1)) == 2  # 2.5 -> 2 (half to even)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_is_rejected(bad: float) -> None:
    raw = decode_words(list(struct.unpack(">HH", struct.pack(">f", bad))), DataType.F32, WordOrder.BIG)
    with pytest.raises(MeterError, match="non-finite"):
        physical(raw, KWH)


def test_sample_is_integers_and_rejects_negative_energy() -> None:
    s = build_sample(5, {"energy_import": Fraction(10), "energy_export": Fraction(3, 2), "power_active": Fraction(-7),
                         "voltage_l1": Fraction(2301, 10)})
    assert (s.import_wh, s.export_wh, s.power_w, s.extra) == (10, 2, -7, {"voltage_l1": 230.1})
    assert type(s.import_wh) is int
    with pytest.raises(MeterError, match="negative energy"):
        build_sample(5, {"energy_import": Fraction(-1), "energy_export": Fraction(0)})
    with pytest.raises(MeterError, match="energy_export"):
        build_sample(5, {"energy_import": Fraction(1)})
