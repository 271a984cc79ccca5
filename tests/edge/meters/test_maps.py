"""Register maps are data: the shipped files load, bad files fail with file, line and reason."""

from __future__ import annotations

import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.meters.maps import DataType, Function, MeterProtocol, WordOrder, default_maps_dir, load_map, load_maps

GOOD = """\
[meter]
model = "Test meter T1"
protocol = "modbus"

[defaults]
function = "input"
type = "f32"

[[probe]]
function = "holding"
address = 10
type = "u16"
equals = 7

[measurements.energy_import]
address = 0
unit = "kWh"

[measurements.energy_export]
address = 2
unit = "kWh"
"""


def write(tmp_path: Path, text: str, name: str = "t1.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_maps_load_with_real_addresses() -> None:
    maps = load_maps(default_maps_dir())
    assert set(maps) >= {"eastron-sdm630", "eastron-sdm120", "carlo-gavazzi-em24", "sunspec-203", "dlms-generic"}
    sdm = maps["eastron-sdm630"].measurements
    assert sdm["energy_import"].modbus is not None
    assert (sdm["energy_import"].modbus.function, sdm["energy_import"].modbus.address) == (Function.INPUT, 0x48)
    assert sdm["energy_import"].modbus.type is DataType.F32
    em24 = maps["carlo-gavazzi-em24"].measurements["energy_export"]
    assert em24.modbus is not None
    assert (em24.modbus.address, em24.modbus.word_order, em24.scale) == (0x4E, WordOrder.LITTLE, Fraction(1, 10))
    sunspec = maps["sunspec-203"].measurements["energy_import"]
    assert sunspec.scale_register is not None
    assert sunspec.scale_register.address == 40124
    dlms = maps["dlms-generic"]
    assert dlms.protocol is MeterProtocol.DLMS
    assert dlms.measurements["power_active"].dlms is not None
    assert dlms.measurements["power_active"].dlms.obis == (1, 0, 16, 7, 0, 255)


def test_good_file_and_defaults(tmp_path: Path) -> None:
    m = load_map(write(tmp_path, GOOD))
    assert m.id == "t1"
    assert m.probes[0].equals == frozenset({7})
    assert m.measurements["energy_export"].unit_factor == 1000


BAD = [
    ("syntax", GOOD.replace('address = 0\nunit = "kWh"', 'address = 0\nunit = "kWh'), 17, "not valid TOML"),
    ("bad type", GOOD.replace('type = "f32"', 'type = "float"'), 7, "type: invalid value 'float'"),
    ("unknown key", GOOD.replace("address = 2\n", "address = 2\nadress = 3\n"), 21, "adress: unknown key"),
    ("missing export", GOOD.split("[measurements.energy_export]", 1)[0], 15,
     "missing required measurement 'energy_export'"),
    ("wrong unit", GOOD.replace('address = 2\nunit = "kWh"', 'address = 2\nunit = "W"'), 21,
     "energy_export needs a unit of energy"),
    ("float probe", GOOD.replace('type = "u16"', 'type = "f32"'), 12, "probe registers must have an integer type"),
    ("bad scale", GOOD.replace("address = 2\n", 'address = 2\nscale = "ten"\n'), 21, "invalid scale"),
    ("address range", GOOD.replace("address = 2\n", "address = 70000\n"), 20, "between 0 and 65535"),
    ("no probe", GOOD.replace("[[probe]]", "[probe_]"), None, "unknown key"),
    ("straddle", GOOD + "\n[[block]]\nfunction = \"input\"\nstart = 1\ncount = 2\n", 16, "straddles"),
    ("bad obis", GOOD.replace('protocol = "modbus"', 'protocol = "dlms"').replace("[defaults]\nfunction = \"input\"\n"
     "type = \"f32\"\n", "").replace('function = "holding"\naddress = 10\ntype = "u16"\nequals = 7',
     'obis = "1.0.1.8.0"'), 7, "invalid OBIS code"),
]


@pytest.mark.parametrize(("text", "line", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_files_name_file_line_and_reason(tmp_path: Path, text: str, line: int | None, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_map(path)
    message = str(err.value)
    assert str(path) in message
    if line is not None:
        assert f"line {line}" in message or f"{path}:{line}:" in message, message
    assert reason in message


def test_duplicate_ids_fail(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("[meter]\n", '[meter]\nid = "same"\n'), "a.toml")
    write(tmp_path, GOOD.replace("[meter]\n", '[meter]\nid = "same"\n'), "b.toml")
    with pytest.raises(ConfigError, match="already defined"):
        load_maps(tmp_path)
