"""P1 meters in edge.toml: key files under the secret-file rule, never in reprs or errors; P1 buses and meters
checked against the maps; the poller's meter-clock alarm and CRC failures that never become signed readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import EdgeConfig, load_config
from edge.errors import ConfigError
from edge.meter_setup import describe, plan
from edge.meters.base import MeterSample
from edge.meters.fake import FakeMeterReader
from edge.outbox import Outbox
from edge.poller import Poller
from edge.secretfile import SecretFileError
from edge.signing import ProtocolSigner
from edge.status import LinkState, MeterStatus, StatusBoard
from edge.web import render_page
from tests.edge.daemon.daemon_config import config_text

KEY_HEX = "00112233445566778899aabbccddeeff"


def _config(tmp_path: Path, meter: str, bus: str = 'kind = "p1-tcp"\nhost = "127.0.0.1"\nport = 8088') -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(config_text(tmp_path / "s") + f'\n[[bus]]\nname = "p1"\n{bus}\n\n[[meter]]\nserial = "LU-1"\n'
                    f'bus = "p1"\n{meter}\n')
    path.chmod(0o600)
    return path


def _key(tmp_path: Path, text: str = KEY_HEX, mode: int = 0o600) -> Path:
    p = tmp_path / "LU-1.key"
    p.write_text(text + "\n")
    p.chmod(mode)
    return p


def _load(path: Path) -> EdgeConfig:
    cfg = load_config(path)
    plan(cfg)
    return cfg


def test_smarty_meter_with_its_key_file(tmp_path: Path) -> None:
    _key(tmp_path)
    cfg = _load(_config(tmp_path, 'model = "sagemcom-t210-d-lu"\nkey_file = "LU-1.key"\nmax_clock_skew_s = 30'))
    (meter,) = cfg.meters
    assert meter.key == bytes.fromhex(KEY_HEX)
    assert meter.max_clock_skew_s == 30
    assert meter.stale_after_s == 30
    assert KEY_HEX not in repr(cfg)
    assert "0011" not in repr(meter)
    (info,) = describe(plan(cfg))
    assert info.address == "127.0.0.1:8088"
    assert info.max_clock_skew_s == 30


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_must_be_private(tmp_path: Path, mode: int) -> None:
    _key(tmp_path, mode=mode)
    with pytest.raises(SecretFileError, match=r"meter\[0\].key_file: .*LU-1.key is accessible by group or others") as e:
        load_config(_config(tmp_path, 'model = "sagemcom-t210-d-lu"\nkey_file = "LU-1.key"'))
    assert "chmod 600" in str(e.value)


@pytest.mark.parametrize("content", ["0011", "zz" * 16, KEY_HEX + "00"])
def test_malformed_key_is_refused_without_quoting_it(tmp_path: Path, content: str) -> None:
    _key(tmp_path, content)
    with pytest.raises(ConfigError, match="must hold the 16-byte key as 32 hex digits") as e:
        load_config(_config(tmp_path, 'model = "sagemcom-t210-d-lu"\nkey_file = "LU-1.key"'))
    assert content not in str(e.value)


@pytest.mark.parametrize(
    ("meter", "bus", "error"),
    [
        ('model = "sagemcom-t210-d-lu"', None, "is encrypted .*needs key_file"),
        ('model = "iskraemeco-am550-nl"\nkey_file = "LU-1.key"', None, "is not encrypted: remove key_file"),
        ('model = "iskraemeco-am550-nl"\nunit_id = 1', None, "a P1 meter takes no bus address"),
        ('model = "eastron-sdm630"', None, "map 'eastron-sdm630' is modbus but bus 'p1' is p1-tcp"),
        ('model = "iskraemeco-am550-nl"\nunit_id = 1', 'kind = "modbus-tcp"\nhost = "h"',
         "map 'iskraemeco-am550-nl' is p1"),
        ('model = "eastron-sdm630"\nunit_id = 1\nkey_file = "x"', 'kind = "modbus-tcp"\nhost = "h"',
         "only P1 meters take this key"),
    ],
)
def test_p1_meter_errors(tmp_path: Path, meter: str, bus: str | None, error: str) -> None:
    _key(tmp_path)
    path = _config(tmp_path, meter, bus) if bus else _config(tmp_path, meter)
    with pytest.raises(ConfigError, match=error):
        _load(path)


def test_p1_serial_bus_defaults_to_115200(tmp_path: Path) -> None:
    cfg = _load(_config(tmp_path, 'model = "iskraemeco-am550-nl"', 'kind = "p1-serial"\ndevice = "/dev/ttyUSB0"'))
    assert cfg.buses[0].address == "/dev/ttyUSB0 115200 8N1"
    cfg = _load(_config(tmp_path, 'model = "dsmr22-generic"',
                        'kind = "p1-serial"\ndevice = "/dev/ttyUSB0"\nbaudrate = 9600\nbytesize = 7\nparity = "E"'))
    assert cfg.buses[0].address == "/dev/ttyUSB0 9600 7E1"


async def test_meter_clock_alarm_set_and_cleared(outbox: Outbox, signer: ProtocolSigner) -> None:
    board = StatusBoard(device_id="d", version="t", started_ms=0, link=LinkState("x"))
    poller = Poller(outbox=outbox, signer=signer, board=board, on_record=lambda: None, clock_synced=lambda: True)
    state = MeterStatus("P1-1", "p1-tcp", "h:8088", "AM550", 10, max_clock_skew_s=60)
    t = 1_800_000_000_000
    meter = FakeMeterReader("P1-1", script=[
        MeterSample(t, 10, 5, 0, meter_time_ms=t + 95_000),
        MeterSample(t + 1000, 11, 5, 0, meter_time_ms=t + 1000 - 2000),
    ])
    await poller.poll(meter, state, 1.0)
    assert board.alarms["meter_clock:P1-1"].startswith("meter P1-1: its clock is 95 s ahead of the gateway's")
    assert state.to_dict()["meter_clock_offset_s"] == 95
    await poller.poll(meter, state, 1.0)
    assert "meter_clock:P1-1" not in board.alarms
    assert state.to_dict()["meter_clock_offset_s"] == -2
    assert outbox.stats().depth == 2  # the readings themselves are stored either way (flagged by the alarm)


def test_status_page_shows_the_meter_clock_and_p1_counters_never_a_key(tmp_path: Path, outbox: Outbox) -> None:
    _key(tmp_path)
    cfg = _load(_config(tmp_path, 'model = "sagemcom-t210-d-lu"\nkey_file = "LU-1.key"'))
    board = StatusBoard(device_id="d", version="t", started_ms=0, link=LinkState("x"))
    (info,) = describe(plan(cfg))
    state = board.meters[info.serial] = MeterStatus(info.serial, info.protocol, info.address, info.model,
                                                    info.interval_s, max_clock_skew_s=info.max_clock_skew_s)
    state.record_ok(MeterSample(1, 2, 3, 4, {"p1_crc_errors": 2.0}, meter_time_ms=-4000), 1)
    state.clock_offset_ms = -4000
    page = render_page(board.snapshot(10_000, outbox.stats(), []), 10)
    assert "-4 s against the gateway" in page
    assert "p1_crc_errors" in page
    assert KEY_HEX not in page
    assert KEY_HEX not in repr(board)
