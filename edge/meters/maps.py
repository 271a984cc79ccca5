"""Register maps as data: one TOML file per meter model, validated at start-up.

File shape (see ``firmware-config/meters/*.toml`` for complete, commented examples)::

    [meter]
    id = "eastron-sdm630"            # optional, defaults to the file name without .toml
    model = "Eastron SDM630-Modbus V2"  # the exact model this map was written for
    manufacturer = "Eastron"
    protocol = "modbus"              # "modbus" | "dlms"

    [defaults]                       # optional, inherited by probes and measurements (modbus only)
    function = "input"               # "input" (FC 04) | "holding" (FC 03)
    type = "f32"                     # u16 i16 u32 i32 u64 f32 f64
    word_order = "big"               # "big" = most significant register first, "little" = least first

    [[probe]]                        # all probes must match for auto-detection (scan)
    function = "holding"
    address = 0xFC02
    type = "u16"
    equals = [0x0070]                # one value or a list of accepted values

    [measurements.energy_import]     # energy_import and energy_export are required
    address = 0x0048
    unit = "kWh"                     # Wh kWh MWh (energy), W kW (power), V A Hz VA var (display only)
    scale = "1"                      # optional multiplier: int or decimal string ("0.1")
    scale_register = 40124           # optional SunSpec-style i16 exponent register (value * 10**sf)

    [[block]]                        # optional contiguous reads; points inside a block are read with it
    function = "input"
    start = 0x0000
    count = 0x4C                     # at most 125 registers per read

DLMS maps name points by OBIS code instead (``obis = "1.0.1.8.0.255"``, ``class_id = 3`` or ``4``); the unit must
be the SI unit the meter reports in its scaler_unit attribute (Wh, W, V, ...), and the reading is checked against it.

P1 maps (``protocol = "p1"``) name the telegram variant (``[p1] variant = "dsmr5"``), probes by the telegram's
identification line (``header = "/ISk5\\2M550"``) or, for encrypted telegrams, the system title
(``system_title = "SAG"``), and measurements by telegram registers, summed: ``obis = ["1-0:1.8.1", "1-0:1.8.2"]``,
optionally less ``minus = ["1-0:2.7.0"]``; ``unit`` is the unit the telegram writes (kWh, kW, V, A) and is checked.

Adding a model is adding a file: nothing here knows any model. A bad file raises ``ConfigError`` naming the file,
line and reason.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

import gtxconfig
from edge.errors import ConfigError
from edge.p1.variants import VARIANTS, Variant, valid_obis
from gtxconfig.document import Document, KeyPath

MAX_BLOCK_REGISTERS = 125
REQUIRED_MEASUREMENTS = ("energy_import", "energy_export")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_OBIS = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


class MeterProtocol(StrEnum):
    MODBUS = "modbus"
    DLMS = "dlms"
    P1 = "p1"


class Function(StrEnum):
    HOLDING = "holding"
    INPUT = "input"


class WordOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


class DataType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    F32 = "f32"
    F64 = "f64"

    @property
    def words(self) -> int:
        return {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "u64": 4, "f32": 2, "f64": 4}[self.value]

    @property
    def is_float(self) -> bool:
        return self in (DataType.F32, DataType.F64)


class Quantity(StrEnum):
    ENERGY = "energy"
    POWER = "power"
    OTHER = "other"


# unit -> (quantity, factor to the base unit Wh / W)
UNITS: Mapping[str, tuple[Quantity, int]] = {
    "Wh": (Quantity.ENERGY, 1),
    "kWh": (Quantity.ENERGY, 1000),
    "MWh": (Quantity.ENERGY, 1_000_000),
    "W": (Quantity.POWER, 1),
    "kW": (Quantity.POWER, 1000),
    "V": (Quantity.OTHER, 1),
    "A": (Quantity.OTHER, 1),
    "Hz": (Quantity.OTHER, 1),
    "VA": (Quantity.OTHER, 1),
    "var": (Quantity.OTHER, 1),
    "varh": (Quantity.OTHER, 1),
    "%": (Quantity.OTHER, 1),
    "": (Quantity.OTHER, 1),
}
_REQUIRED_QUANTITY = {
    "energy_import": Quantity.ENERGY,
    "energy_export": Quantity.ENERGY,
    "power_active": Quantity.POWER,
}


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    function: Function
    address: int
    type: DataType
    word_order: WordOrder

    @property
    def count(self) -> int:
        return self.type.words


PUSH_LAYOUTS = ("obis-value-scaler",)


@dataclass(frozen=True, slots=True)
class DlmsPoint:
    obis: tuple[int, int, int, int, int, int]
    class_id: int

    @property
    def obis_text(self) -> str:
        return ".".join(str(x) for x in self.obis)


@dataclass(frozen=True, slots=True)
class P1Point:
    """Registers of a P1 telegram (``1-0:1.8.1``): the measurement is the sum of ``plus`` less the sum of ``minus``."""

    plus: tuple[str, ...]
    minus: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    unit: str
    scale: Fraction
    modbus: ModbusPoint | None = None
    scale_register: ModbusPoint | None = None
    dlms: DlmsPoint | None = None
    p1: P1Point | None = None

    @property
    def quantity(self) -> Quantity:
        return UNITS[self.unit][0]

    @property
    def unit_factor(self) -> int:
        return UNITS[self.unit][1]


@dataclass(frozen=True, slots=True)
class Probe:
    modbus: ModbusPoint | None = None
    equals: frozenset[int] = frozenset()
    dlms: DlmsPoint | None = None
    #: DLMS: the attribute-2 string must start with these bytes (e.g. the manufacturer's FLAG id).
    prefix: bytes | None = None
    #: P1: the telegram's identification line starts with this (compared case-insensitively) ...
    header: str | None = None
    #: ... or, for encrypted telegrams, the system title's text starts with this (its first 3 bytes: the maker)
    system_title: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    function: Function
    start: int
    count: int

    def contains(self, point: ModbusPoint) -> bool:
        return (
            point.function == self.function
            and self.start <= point.address
            and point.address + point.count <= self.start + self.count
        )


@dataclass(frozen=True, slots=True)
class MeterMap:
    id: str
    model: str
    manufacturer: str
    protocol: MeterProtocol
    probes: tuple[Probe, ...]
    measurements: Mapping[str, Measurement]
    blocks: tuple[Block, ...]
    source: str
    #: DLMS: the object holding the meter's expected invocation (frame) counter, read to re-synchronise ours.
    frame_counter: DlmsPoint | None = None
    #: DLMS: the meter pushes DATA-NOTIFICATIONs (``"obis-value-scaler"``: a structure of OBIS octet-string, value,
    #: scaler_unit triples, as Austrian/Kaifa customer interfaces send) instead of being polled.
    push_layout: str | None = None
    #: P1 maps: the telegram variant (``edge.p1.variants``), e.g. "dsmr5", "belgium", "luxembourg-smarty"
    p1_variant: str | None = None


class _Reader:
    """Typed access to one TOML document with errors that point at the line."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def fail(self, path: KeyPath, reason: str) -> gtxconfig.ConfigError:
        return self.doc.error(path, reason)

    def table(self, node: Any, path: KeyPath) -> Mapping[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(path, "must be a table")
        return node

    def only(self, table: Mapping[str, Any], path: KeyPath, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail((*path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def text(self, table: Mapping[str, Any], key: str, path: KeyPath, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(path, f"missing required key '{key}'")
        if not isinstance(value, str):
            raise self.fail((*path, key), "must be a string")
        return value

    def integer(self, table: Mapping[str, Any], key: str, path: KeyPath, lo: int, hi: int) -> int:
        if key not in table:
            raise self.fail(path, f"missing required key '{key}'")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail((*path, key), "must be an integer")
        if not lo <= value <= hi:
            raise self.fail((*path, key), f"must be between {lo} and {hi}, got {value}")
        return value

    def enum(self, table: Mapping[str, Any], key: str, path: KeyPath, kind: type[StrEnum], default: Any) -> Any:
        value = table.get(key, default)
        if value is None:
            raise self.fail(path, f"missing required key '{key}'")
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(m.value for m in kind)
            raise self.fail((*path, key), f"invalid value {value!r} (expected one of: {choices})") from None


def _parse_scale(r: _Reader, value: Any, path: KeyPath) -> Fraction:
    if isinstance(value, bool):
        raise r.fail(path, "must be an integer or a decimal string such as \"0.1\"")
    try:
        if isinstance(value, int):
            scale = Fraction(value)
        elif isinstance(value, str):
            scale = Fraction(value.strip())
        elif isinstance(value, float):
            # A TOML float is written in decimal; take the decimal the author wrote, not its binary neighbour.
            scale = Fraction(repr(value))
        else:
            scale = Fraction(str(value))  # anything else (a TOML date, a table) fails to parse here
    except (ValueError, ZeroDivisionError):
        raise r.fail(path, f"invalid scale {value!r}: use an integer or a decimal string such as \"0.1\"") from None
    if scale == 0:
        raise r.fail(path, "scale must not be zero")
    return scale


def _modbus_point(r: _Reader, t: Mapping[str, Any], path: KeyPath, defaults: Mapping[str, Any]) -> ModbusPoint:
    function = r.enum(t, "function", path, Function, defaults.get("function"))
    address = r.integer(t, "address", path, 0, 0xFFFF)
    dtype: DataType = r.enum(t, "type", path, DataType, defaults.get("type"))
    order = r.enum(t, "word_order", path, WordOrder, defaults.get("word_order", "big"))
    if address + dtype.words - 1 > 0xFFFF:
        raise r.fail((*path, "address"), "register range runs past 0xFFFF")
    return ModbusPoint(function=function, address=address, type=dtype, word_order=order)


def _dlms_point(r: _Reader, t: Mapping[str, Any], path: KeyPath) -> DlmsPoint:
    text = r.text(t, "obis", path)
    m = _OBIS.match(text.strip())
    if not m or any(int(g) > 255 for g in m.groups()):
        raise r.fail((*path, "obis"), f"invalid OBIS code {text!r} (expected six numbers 0..255 like 1.0.1.8.0.255)")
    obis = tuple(int(g) for g in m.groups())
    class_id = r.integer(t, "class_id", path, 1, 0xFFFF) if "class_id" in t else 3
    if class_id not in (3, 4):
        raise r.fail((*path, "class_id"), "only class 3 (Register) and 4 (Extended register) are supported")
    return DlmsPoint(obis=(obis[0], obis[1], obis[2], obis[3], obis[4], obis[5]), class_id=class_id)


_MODBUS_POINT_KEYS = {"function", "address", "type", "word_order"}


P1_UNITS = ("kWh", "Wh", "kW", "W", "V", "A")


def _p1_codes(r: _Reader, t: Mapping[str, Any], key: str, path: KeyPath, variant: Variant | None,
              *, required: bool) -> tuple[str, ...]:
    raw = t.get(key)
    if raw is None:
        if required:
            raise r.fail(path, f"missing required key '{key}'")
        return ()
    codes = raw if isinstance(raw, list) else [raw]
    if not codes or not all(isinstance(c, str) and valid_obis(c) for c in codes):
        raise r.fail((*path, key), "must be a P1 register like \"1-0:1.8.1\" or a non-empty list of them")
    for c in codes:
        if variant is not None and not variant.knows(c):
            raise r.fail((*path, key), f"P1 variant {variant.name!r} has no register {c}")
    return tuple(codes)


def _measurement(
    r: _Reader, name: str, t: Mapping[str, Any], path: KeyPath, protocol: MeterProtocol, defaults: Mapping[str, Any],
    variant: Variant | None = None,
) -> Measurement:
    if not _NAME.match(name):
        raise r.fail(path, f"measurement name {name!r} must be lower_snake_case")
    unit = r.text(t, "unit", path)
    if unit not in UNITS:
        raise r.fail((*path, "unit"), f"unknown unit {unit!r} (known: {', '.join(u for u in UNITS if u)})")
    wanted = _REQUIRED_QUANTITY.get(name)
    if wanted is not None and UNITS[unit][0] != wanted:
        raise r.fail((*path, "unit"), f"{name} needs a unit of {wanted.value}, got {unit!r}")
    scale = _parse_scale(r, t["scale"], (*path, "scale")) if "scale" in t else Fraction(1)
    if protocol is MeterProtocol.P1:
        r.only(t, path, {"obis", "minus", "unit"})
        if unit not in P1_UNITS:
            raise r.fail((*path, "unit"), f"a P1 register's unit is one of {', '.join(P1_UNITS)} (as the telegram "
                         "writes it)")
        plus = _p1_codes(r, t, "obis", path, variant, required=True)
        return Measurement(name=name, unit=unit, scale=scale,
                           p1=P1Point(plus, _p1_codes(r, t, "minus", path, variant, required=False)))
    if protocol is MeterProtocol.DLMS:
        r.only(t, path, {"obis", "class_id", "unit", "scale"})
        if UNITS[unit][1] != 1:
            raise r.fail((*path, "unit"), "DLMS values carry their own scaler: use the base unit (Wh, W)")
        return Measurement(name=name, unit=unit, scale=scale, dlms=_dlms_point(r, t, path))
    r.only(t, path, {*_MODBUS_POINT_KEYS, "unit", "scale", "scale_register"})
    point = _modbus_point(r, t, path, defaults)
    scale_register = None
    if "scale_register" in t:
        sr = r.integer(t, "scale_register", path, 0, 0xFFFF)
        scale_register = ModbusPoint(point.function, sr, DataType.I16, WordOrder.BIG)
    return Measurement(name=name, unit=unit, scale=scale, modbus=point, scale_register=scale_register)


def _probe(
    r: _Reader, t: Mapping[str, Any], path: KeyPath, protocol: MeterProtocol, defaults: Mapping[str, Any]
) -> Probe:
    if protocol is MeterProtocol.P1:
        r.only(t, path, {"header", "system_title"})
        if ("header" in t) == ("system_title" in t):
            raise r.fail(path, "a P1 probe takes either 'header' or 'system_title'")
        key = "header" if "header" in t else "system_title"
        text = r.text(t, key, path)
        if not text or not text.isascii():
            raise r.fail((*path, key), "must be a non-empty ASCII string")
        return Probe(header=text) if key == "header" else Probe(system_title=text)
    if protocol is MeterProtocol.DLMS:
        r.only(t, path, {"obis", "class_id", "starts_with"})
        if "starts_with" not in t:
            return Probe(dlms=_dlms_point(r, t, path))
        # A Data object (class 1) holding a string, e.g. the logical device name 0.0.42.0.0.255 whose first three
        # characters are the manufacturer's FLAG id ("LGZ", "ISK", "KFM").
        prefix = r.text(t, "starts_with", path)
        named = _dlms_point(r, {"obis": t.get("obis"), "class_id": 3}, path)
        class_id = r.integer(t, "class_id", path, 1, 0xFFFF) if "class_id" in t else 1
        return Probe(dlms=DlmsPoint(named.obis, class_id), prefix=prefix.encode())
    r.only(t, path, {*_MODBUS_POINT_KEYS, "equals"})
    point = _modbus_point(r, t, path, defaults)
    if point.type.is_float:
        raise r.fail((*path, "type"), "probe registers must have an integer type")
    raw = t.get("equals")
    if raw is None:
        raise r.fail(path, "missing required key 'equals'")
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise r.fail((*path, "equals"), "must be an integer or a non-empty list of integers")
    return Probe(modbus=point, equals=frozenset(values))


def _block(r: _Reader, t: Mapping[str, Any], path: KeyPath) -> Block:
    r.only(t, path, {"function", "start", "count"})
    function = r.enum(t, "function", path, Function, None)
    start = r.integer(t, "start", path, 0, 0xFFFF)
    count = r.integer(t, "count", path, 1, MAX_BLOCK_REGISTERS)
    if start + count - 1 > 0xFFFF:
        raise r.fail((*path, "count"), "block runs past register 0xFFFF")
    return Block(function=function, start=start, count=count)


def parse_map(doc: Document, default_id: str) -> MeterMap:  # noqa: PLR0912, PLR0915 - one flat validation pass
    """Validate one map document. Raises ConfigError naming file, line and reason."""
    r = _Reader(doc)
    data = doc.data
    r.only(data, (), {"meter", "defaults", "probe", "measurements", "block", "p1"})
    meter = r.table(data.get("meter"), ("meter",)) if "meter" in data else None
    if meter is None:
        raise r.fail((), "missing [meter] table")
    r.only(meter, ("meter",), {"id", "model", "manufacturer", "protocol", "notes", "frame_counter_obis",
                               "push_layout"})
    map_id = r.text(meter, "id", ("meter",), default_id)
    if not _ID.match(map_id):
        raise r.fail(("meter", "id"), f"map id {map_id!r} must be lower-case letters, digits, '.', '_' or '-'")
    model = r.text(meter, "model", ("meter",))
    manufacturer = r.text(meter, "manufacturer", ("meter",), "")
    protocol: MeterProtocol = r.enum(meter, "protocol", ("meter",), MeterProtocol, None)
    frame_counter: DlmsPoint | None = None
    push_layout: str | None = None
    for key in ("frame_counter_obis", "push_layout"):
        if key in meter and protocol is not MeterProtocol.DLMS:
            raise r.fail(("meter", key), "only DLMS maps take this key")
    if protocol is MeterProtocol.DLMS:
        fc = _dlms_point(r, {"obis": meter.get("frame_counter_obis", "0.0.43.1.0.255"), "class_id": 3},
                         ("meter", "frame_counter_obis"))
        frame_counter = DlmsPoint(fc.obis, 1)  # a Data object (class 1), attribute 2
        if "push_layout" in meter:
            push_layout = r.text(meter, "push_layout", ("meter",))
            if push_layout not in PUSH_LAYOUTS:
                raise r.fail(("meter", "push_layout"), f"unknown push layout {push_layout!r} (known: "
                             f"{', '.join(PUSH_LAYOUTS)})")

    variant = _p1_variant(r, data, protocol)
    defaults: Mapping[str, Any] = {}
    if "defaults" in data:
        defaults = r.table(data["defaults"], ("defaults",))
        if protocol is not MeterProtocol.MODBUS:
            raise r.fail(("defaults",), f"{protocol.value.upper()} maps take no [defaults]")
        r.only(defaults, ("defaults",), {"function", "type", "word_order"})
        # Validate defaults themselves so a typo is reported where it was made.
        for key, kind in (("function", Function), ("type", DataType), ("word_order", WordOrder)):
            if key in defaults:
                r.enum(defaults, key, ("defaults",), kind, None)

    raw_probes = data.get("probe", [])
    if not isinstance(raw_probes, list) or not raw_probes:
        raise r.fail(("probe",), "at least one [[probe]] is needed for auto-detection")
    probes = tuple(
        _probe(r, r.table(p, ("probe", i)), ("probe", i), protocol, defaults) for i, p in enumerate(raw_probes)
    )

    raw_measurements = r.table(data.get("measurements", {}), ("measurements",))
    measurements = {
        name: _measurement(
            r, name, r.table(t, ("measurements", name)), ("measurements", name), protocol, defaults, variant
        )
        for name, t in raw_measurements.items()
    }
    for name in REQUIRED_MEASUREMENTS:
        if name not in measurements:
            raise r.fail(("measurements",), f"missing required measurement '{name}'")

    raw_blocks = data.get("block", [])
    if not isinstance(raw_blocks, list):
        raise r.fail(("block",), "must be an array of tables ([[block]])")
    if raw_blocks and protocol is not MeterProtocol.MODBUS:
        raise r.fail(("block",), f"{protocol.value.upper()} maps take no [[block]]")
    blocks = tuple(_block(r, r.table(b, ("block", i)), ("block", i)) for i, b in enumerate(raw_blocks))
    for name, m in measurements.items():
        for point, key in ((m.modbus, "address"), (m.scale_register, "scale_register")):
            if point is None:
                continue
            for b in blocks:
                overlaps = b.function == point.function and (
                    point.address < b.start + b.count and b.start < point.address + point.count
                )
                if overlaps and not b.contains(point):
                    raise r.fail(("measurements", name, key), "register straddles the edge of a [[block]]")
    return MeterMap(
        id=map_id,
        model=model,
        manufacturer=manufacturer,
        protocol=protocol,
        probes=probes,
        measurements=measurements,
        blocks=blocks,
        source=doc.source,
        frame_counter=frame_counter,
        push_layout=push_layout,
        p1_variant=variant.name if variant is not None else None,
    )


def _p1_variant(r: _Reader, data: Mapping[str, Any], protocol: MeterProtocol) -> Variant | None:
    if protocol is not MeterProtocol.P1:
        if "p1" in data:
            raise r.fail(("p1",), "only P1 maps (protocol = \"p1\") take a [p1] table")
        return None
    t = r.table(data.get("p1"), ("p1",)) if "p1" in data else None
    if t is None:
        raise r.fail((), "missing [p1] table (variant = \"dsmr5\", ...)")
    r.only(t, ("p1",), {"variant"})
    name = r.text(t, "variant", ("p1",))
    variant = VARIANTS.get(name)
    if variant is None:
        raise r.fail(("p1", "variant"), f"unknown P1 variant {name!r} (known: {', '.join(VARIANTS)})")
    return variant


def load_map(path: str | Path) -> MeterMap:
    p = Path(path)
    return parse_map(Document.load(p, ConfigError), default_id=p.stem)


def load_maps(directory: str | Path) -> dict[str, MeterMap]:
    """Load every ``*.toml`` map in ``directory`` (sorted by name), keyed by map id. Duplicate ids fail."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d}: meter map directory does not exist")
    maps: dict[str, MeterMap] = {}
    for path in sorted(d.glob("*.toml")):
        m = load_map(path)
        if m.id in maps:
            raise ConfigError(f"{path}: map id {m.id!r} already defined in {maps[m.id].source}")
        maps[m.id] = m
    if not maps:
        raise ConfigError(f"{d}: no meter maps (*.toml) found")
    return maps


#: Where an installed package (a wheel: ``pip install 'gridtokenx[edge]'``, the Docker image) keeps the shipped maps,
#: under its prefix: ``[tool.setuptools.data-files]`` in pyproject.toml installs ``firmware-config/meters`` there.
INSTALLED_MAPS = Path("share") / "gridtokenx" / "meters"


def default_maps_dir() -> Path:
    """The shipped maps: ``firmware-config/meters`` of a source checkout (editable install), else the copy an
    installed package holds under ``<prefix>/share/gridtokenx/meters`` (the daemon's config may point elsewhere)."""
    checkout = Path(__file__).resolve().parents[2] / "firmware-config" / "meters"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / INSTALLED_MAPS
