"""[[bus]] and [[meter]] tables parse into frozen configs; mistakes name file, line and reason."""

from __future__ import annotations

import dataclasses

import pytest

from edge.errors import ConfigError
from edge.meters.config import BusKind, DlmsAuth, parse_buses, parse_meters
from edge.meters.maps import default_maps_dir, load_maps
from gtxconfig.document import Document

MAPS = load_maps(default_maps_dir())

CONFIG = """\
[[bus]]
name = "rs485"
kind = "modbus-rtu"
device = "/dev/ttyUSB0"
baudrate = 19200
inter_request_delay_ms = 50

[[bus]]
name = "gw"
kind = "modbus-tcp"
host = "192.0.2.10"

[[bus]]
name = "dlms"
kind = "dlms-tcp"
host = "192.0.2.11"

[[meter]]
serial = "SDM-1"
bus = "rs485"
model = "eastron-sdm630"
unit_id = 1

[[meter]]
serial = "EM24-2"
bus = "rs485"
model = "carlo-gavazzi-em24"
unit_id = 2
poll_interval_s = 15

[[meter]]
serial = "DLMS-3"
bus = "dlms"
model = "dlms-generic"
auth = "low"
password = "s3cret-pw"
"""


def _doc(text: str) -> Document:
    return Document.from_text("edge.toml", text, ConfigError)


def test_parse_buses_and_meters() -> None:
    doc = _doc(CONFIG)
    buses = parse_buses(doc)
    assert [b.kind for b in buses] == [BusKind.MODBUS_RTU, BusKind.MODBUS_TCP, BusKind.DLMS_TCP]
    assert buses[0].inter_request_delay_s == 0.05
    assert buses[1].port == 502
    assert buses[2].port == 4059
    meters = parse_meters(doc, buses, MAPS)
    assert [m.serial for m in meters] == ["SDM-1", "EM24-2", "DLMS-3"]
    assert meters[1].poll_interval_s == 15
    assert meters[2].auth is DlmsAuth.LOW
    assert meters[2].client_address == 17
    assert "s3cret" not in repr(meters[2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        meters[0].unit_id = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        ('kind = "modbus-rtu"', 'kind = "modbus"', 3, "invalid value 'modbus'"),
        ('host = "192.0.2.10"', 'host = "192.0.2.10"\ndevice = "/dev/x"', 12, "not used by a modbus-tcp bus"),
        ('model = "eastron-sdm630"', 'model = "sdm999"', 21, "no meter map 'sdm999'"),
        ("unit_id = 2", "unit_id = 1", 28, "same bus address as meter 'SDM-1'"),
        ("unit_id = 2", "unit_id = 300", 28, "between 1 and 247"),
        ('bus = "dlms"', 'bus = "gw"', 34, "is dlms but bus 'gw' is modbus-tcp"),
        ('password = "s3cret-pw"', "", 35, "needs a non-empty 'password'"),
        ('serial = "EM24-2"', 'serial = "SDM-1"', 25, "already defined"),
        ('serial = "EM24-2"', 'serial = "' + "E" * 33 + '"', 25, "1..32 characters"),
        ('serial = "EM24-2"', 'serial = "EM 24"', 25, "printable ASCII without spaces"),
    ],
)
def test_config_errors_name_line(old: str, new: str, line: int, reason: str) -> None:
    doc = _doc(CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        parse_meters(doc, parse_buses(doc), MAPS)
    assert f"edge.toml:{line}:" in str(err.value), str(err.value)
    assert reason in str(err.value)
    assert "s3cret" not in str(err.value)


def test_dlms_hdlc_bus_and_meter() -> None:
    doc = _doc(
        '[[bus]]\nname = "optical"\nkind = "dlms-hdlc"\ndevice = "/dev/ttyUSB1"\nbaudrate = 9600\n\n'
        '[[meter]]\nserial = "LGZ-1"\nbus = "optical"\nmodel = "dlms-generic"\nphysical_address = 18\n',
    )
    buses = parse_buses(doc)
    (m,) = parse_meters(doc, buses, MAPS)
    assert buses[0].address == "/dev/ttyUSB1 9600 8N1"
    assert (m.client_address, m.server_address, m.physical_address, m.auth) == (16, 1, 18, DlmsAuth.NONE)
