"""Register words <-> exact numbers, and exact numbers -> integer Wh / W (pure, no I/O).

Everything stays a ``Fraction`` until the boundary, where it is rounded once, half to even, to an integer.
Floats from f32/f64 registers are converted exactly (``Fraction(float)``) before scaling, so no binary rounding
error is multiplied by the scale; NaN and infinities are rejected as nonsense, never turned into a reading.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from fractions import Fraction

from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.maps import DataType, Measurement, WordOrder

_STRUCT = {
    DataType.U16: ">H",
    DataType.I16: ">h",
    DataType.U32: ">I",
    DataType.I32: ">i",
    DataType.U64: ">Q",
    DataType.F32: ">f",
    DataType.F64: ">d",
}


def decode_words(words: Sequence[int], dtype: DataType, order: WordOrder) -> int | float:
    """Decode ``dtype.words`` 16-bit registers (each big-endian on the wire) into a Python number."""
    if len(words) != dtype.words:
        raise MeterError(f"expected {dtype.words} registers for {dtype.value}, got {len(words)}")
    ordered = list(words) if order is WordOrder.BIG else list(reversed(words))
    raw = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in ordered)
    value: int | float = struct.unpack(_STRUCT[dtype], raw)[0]
    return value


def encode_words(value: int | float, dtype: DataType, order: WordOrder) -> list[int]:
    """Inverse of :func:`decode_words` (used by the simulator and tests)."""
    if not dtype.is_float:
        value = int(value)
    raw = struct.pack(_STRUCT[dtype], value)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if order is WordOrder.BIG else list(reversed(words))


def exact(value: int | float) -> Fraction:
    """An exact Fraction of a decoded register; NaN/inf raise MeterError."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MeterError(f"meter returned a non-finite value ({value})")
        return Fraction(value)
    return Fraction(value)


def physical(raw: int | float, m: Measurement, exponent: int = 0) -> Fraction:
    """The measurement in its base unit (Wh, W, V, ...) as an exact Fraction.

    ``exponent`` is a SunSpec scale factor or a DLMS scaler (value * 10**exponent).
    """
    if not -20 <= exponent <= 20:
        raise MeterError(f"{m.name}: implausible scale exponent {exponent}")
    return exact(raw) * m.scale * Fraction(10) ** exponent * m.unit_factor


def to_int(value: Fraction) -> int:
    """Round once, half to even, at the boundary to integer Wh or W."""
    return round(value)


def build_sample(timestamp_ms: int, values: Mapping[str, Fraction]) -> MeterSample:
    """Turn exact base-unit values into a MeterSample. Energy must be present and non-negative."""
    try:
        imp = values["energy_import"]
        exp = values["energy_export"]
    except KeyError as exc:
        raise MeterError(f"meter did not provide {exc.args[0]}") from None
    import_wh, export_wh = to_int(imp), to_int(exp)
    if import_wh < 0 or export_wh < 0:
        raise MeterError(f"negative energy register (import={import_wh} Wh, export={export_wh} Wh)")
    power = values.get("power_active")
    core = ("energy_import", "energy_export", "power_active")
    # Display values for the status page only; never used for energy or money.
    extra = {name: float(v) for name, v in values.items() if name not in core}
    return MeterSample(
        timestamp_ms=timestamp_ms,
        import_wh=import_wh,
        export_wh=export_wh,
        power_w=to_int(power) if power is not None else None,
        extra=extra,
    )
