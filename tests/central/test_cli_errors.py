"""What a newcomer sees when the environment is not ready: one line saying what to do, exit 1 or 2, no traceback."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from central.cli import main

SECRET = "--set=auth.jwt_secret=" + "x" * 40


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["migrate"], ["users", "create", "--email", "a@example.org", "--role", "admin",
                                                   "--password-file", "PW"]])
def test_postgresql_not_running_is_one_line(command: list[str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    password = tmp_path / "pw"
    password.write_text("a-long-enough-password-1\n")
    password.chmod(0o600)
    command = [str(password) if part == "PW" else part for part in command]
    dsn = f"postgresql://gridtokenx@127.0.0.1:{_closed_port()}/gridtokenx"
    rc = main([SECRET, f"--set=database.dsn={dsn}", "--set=mqtt.enabled=false", *command])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1, err
    assert err.startswith("gridtokenx-central: cannot connect to PostgreSQL: ConnectionRefusedError")
    assert "is PostgreSQL running" in err


def test_missing_config_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-c", str(tmp_path / "central.toml"), "migrate"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == (f"gridtokenx-central: {tmp_path / 'central.toml'}: no such file (start from the annotated "
                   "firmware-config/central.example.toml)\n")


def test_unknown_key_names_line_and_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "central.toml"
    path.write_text("[http]\nprot = 8080\n")
    assert main(["-c", str(path), "migrate"]) == 2
    assert capsys.readouterr().err == f"gridtokenx-central: {path}:2: http.prot: unknown key (did you mean 'port'?)\n"


def test_broker_not_running_is_one_line(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    rc = main([SECRET, f"--set=database.dsn={pg_dsn}", "--set=broker.dynsec=true", f"--set=mqtt.port={port}",
               "--set=broker.command_timeout_s=1", "broker", "sync"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err == (f"gridtokenx-central: not connected to the MQTT broker at 127.0.0.1:{port} within 1 s "
                   "(is it running? mqtt.host, mqtt.port, mqtt.username/password_file)\n")


def test_missing_signing_key_says_how_to_create_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([SECRET, f"--set=mqtt.signing_key_file={tmp_path / 'central.key'}", "signing-key", "show"]) == 1
    assert capsys.readouterr().err == (
        f"gridtokenx-central: mqtt.signing_key_file {tmp_path / 'central.key'} does not exist (create it with: "
        "gridtokenx-central -c <config> signing-key init)\n")


def test_output_cut_short_by_its_reader_is_not_an_error() -> None:
    """`gridtokenx-central openapi | head`: the closed pipe ends the command quietly."""
    done = subprocess.run(
        f"{shlex.quote(sys.executable)} -m central.cli openapi | head -c 10", shell=True,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.stdout == '{\n "compon'
    assert done.stderr == ""
