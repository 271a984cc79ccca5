"""Issue 11: every config error of the edge is one line naming the file, the line, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from tests.edge.daemon.daemon_config import config_text

METERS = """
[[bus]]
name = "rs485"
kind = "modbus-tcp"
host = "127.0.0.1"

[[meter]]
serial = "SDM-1"
bus = "rs485"
model = "eastron-sdm630"
unit_id = 1
"""


def _line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("batch_size = 50", "batchsize = 50", "mqtt.batchsize", "unknown key (did you mean 'batch_size'?)"),
        ("unit_id = 1", "unit = 1", "meter[0].unit", "unknown key (did you mean 'unit_id'?)"),
        ("batch_size = 50", 'batch_size = "50"', "mqtt.batch_size", "must be an integer, got string"),
        ("unit_id = 1", "unit_id = true", "meter[0].unit_id", "must be an integer"),
        ("batch_size = 50", "batch_size = 5000", "mqtt.batch_size", "must be between 1 and 1000, got 5000"),
        ("unit_id = 1", "unit_id = 300", "meter[0].unit_id", "must be between 1 and 247, got 300"),
        ("batch_size = 50", 'credential = "password"', "mqtt.credential", 'must be "device-key" or empty'),
        ("batch_size = 50", 'credential = "device-key"\nusername = "gw"', "mqtt.credential",
         'credential = "device-key" replaces username and password'),
    ],
)
def test_typo_wrong_type_and_out_of_range_are_one_line(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    text = config_text(tmp_path / "s") + METERS
    path = tmp_path / "edge.toml"
    path.write_text(text)
    path.chmod(0o600)
    assert [m.serial for m in load_config(path).meters] == ["SDM-1"]
    bad = text.replace(old, new, 1)
    path.write_text(bad)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}:{_line_of(bad, new)}: {key}: {reason}"
