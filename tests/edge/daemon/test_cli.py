from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.demo import DEMO_SERIAL_PREFIX, write_demo_config
from edge.meter_setup import describe, plan
from tests.edge.daemon.central_peer import TEST_CENTRAL_KEY
from tests.edge.daemon.daemon_config import config_text, meters_toml
from tests.edge.daemon.daemon_proc import SimProcess
from tests.services import free_port


def test_init_creates_key_and_outbox_and_prints_device_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "state"))
    assert main(["--config", str(cfg), "init"]) == 0
    out = capsys.readouterr().out
    assert "new device key generated" in out
    device_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("device id:"))
    assert stat.S_IMODE((tmp_path / "state" / "device.key").stat().st_mode) == 0o600
    assert (tmp_path / "state" / "outbox.sqlite").exists()
    assert main(["init", "--config", str(cfg)]) == 0  # idempotent; --config after the command works too
    out = capsys.readouterr().out
    assert "already present" in out
    assert device_id in out


def test_config_errors_exit_2_with_file_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "s").replace("batch_size = 50", "batch_size = -1"))
    assert main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:11: mqtt.batch_size: must be between 1 and 1000, got -1" in err
    assert main(["--config", str(tmp_path / "missing.toml"), "status"]) == 2
    assert capsys.readouterr().err == (f"gridtokenx-edge: {tmp_path / 'missing.toml'}: no such file (start from the "
                                       "annotated firmware-config/edge.example.toml: docs/edge.md, Install)\n")


def test_a_state_dir_that_cannot_be_created_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`init` run as the wrong user (or with a wrong state_dir) says so in one line, without a traceback."""
    (tmp_path / "a-file").write_text("")
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "a-file" / "state"))
    cfg.chmod(0o600)
    assert main(["--config", str(cfg), "init"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gridtokenx-edge: {tmp_path / 'a-file' / 'state'}: Not a directory (run commands as the "
                          "service user")
    assert err.count("\n") == 1


def test_status_reports_unreachable_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "s", status_port=free_port()))
    assert main(["--config", str(cfg), "status"]) == 1
    assert "not reachable" in capsys.readouterr().err


def test_read_and_scan_against_a_real_modbus_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "s") + meters_toml(port, ["RD-1", "RD-2"]))
    sim = SimProcess(port, 2)
    try:
        assert main(["--config", str(cfg), "read", "--meter", "RD-2"]) == 0
        out = capsys.readouterr().out
        assert "import" in out
        assert " Wh" in out
        assert main(["--config", str(cfg), "read", "--meter", "NOPE"]) == 2
        assert "RD-1, RD-2" in capsys.readouterr().err
        assert main(["--config", str(cfg), "scan", "--port", "sim", "--ids", "1-3"]) == 0
        out = capsys.readouterr().out
        assert "unit   1:" in out
        assert "unit   2:" in out
        assert "unit   3" not in out
    finally:
        sim.stop()


def test_scan_prints_only_its_own_lines(tmp_path: Path) -> None:
    """A unit that does not answer is the scan's own business: no pymodbus log lines (with frame dumps) on stderr."""
    port = free_port()
    cfg = tmp_path / "edge.toml"
    cfg.write_text(config_text(tmp_path / "s") + meters_toml(port, ["SC-1"]))
    sim = SimProcess(port, 1)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edge", "--config", str(cfg), "scan", "--port", "sim", "--ids", "1-2"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    finally:
        sim.stop()
    assert done.returncode == 0, done.stderr
    assert "unit   1:" in done.stdout
    assert done.stderr == ""


def test_demo_config_is_valid_and_names_simulated_meters(tmp_path: Path) -> None:
    path = write_demo_config(
        tmp_path / "demo", mqtt_port=1884, sim_port=5021, meters=3, central_public_key=TEST_CENTRAL_KEY.device_id
    )
    cfg = load_config(path)
    assert cfg.mqtt.port == 1884
    assert cfg.central.public_key == TEST_CENTRAL_KEY.public_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    p = plan(cfg)
    assert [m.serial for m in p.meters] == [f"{DEMO_SERIAL_PREFIX}{i:02d}" for i in (1, 2, 3)]
    assert cfg.max_power_w == 2_000_000  # real time: the default bound


def test_demo_config_for_a_faster_simulator_raises_the_register_rise_bound(tmp_path: Path) -> None:
    """The demo's simulator runs 3,600x faster than real time, so its 5 kW meters rise like 18 MW ones; with the
    default bound nearly every reading would be refused as a garbled register (register_jump)."""
    path = write_demo_config(tmp_path / "demo", meters=1, central_public_key=TEST_CENTRAL_KEY.device_id, speed=3600)
    assert load_config(path).max_power_w == 2_000_000 * 3600


def test_dlms_and_modbus_meters_are_described_for_the_status_page(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(
        config_text(tmp_path / "s")
        + meters_toml(5020, ["MB-1"])
        + '\n[[bus]]\nname = "opto"\nkind = "dlms-tcp"\nhost = "10.0.0.9"\nport = 4059\n'
        + '\n[[meter]]\nserial = "DLMS-1"\nbus = "opto"\nmodel = "dlms-generic"\nserver_address = 1\n'
    )
    infos = {i.serial: i for i in describe(plan(load_config(cfg)))}
    assert infos["MB-1"].address == "127.0.0.1:5020 unit 1"
    assert infos["MB-1"].protocol == "modbus-tcp"
    assert infos["DLMS-1"].address == "10.0.0.9:4059 server 1"
    assert infos["DLMS-1"].protocol == "dlms-tcp"
    assert infos["DLMS-1"].interval_s == 60
