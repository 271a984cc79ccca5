"""``gridtokenx-central broker init``: central's broker password and the dynamic-security plugin's first file, both
owner-only, the file holding only the password's hash (Mosquitto's PBKDF2-SHA512); nothing is overwritten or printed.
Mosquitto itself loading the file: tests/central/broker/."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import stat
from pathlib import Path

import pytest

from central.cli import main


def _run(tmp_path: Path, *extra: str) -> int:
    return main([
        "--set", f'auth.jwt_secret="{secrets.token_urlsafe(40)}"', "--set", "mqtt.username=gtx-central",
        "--set", f'mqtt.password_file="{tmp_path / "secrets" / "broker.password"}"', *extra,
        "broker", "init", "--dynsec-file", str(tmp_path / "broker" / "dynamic-security.json"),
    ])


def test_init_writes_the_password_and_the_plugin_file_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path) == 0
    password_file, dynsec = tmp_path / "secrets" / "broker.password", tmp_path / "broker" / "dynamic-security.json"
    password = password_file.read_text().strip()
    assert len(password) >= 43
    for p in (password_file, dynsec):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    doc = json.loads(dynsec.read_text())
    (client,) = doc["clients"]
    assert client["username"] == "gtx-central"
    assert {r["rolename"] for r in client["roles"]} == {"gtx-central", "gtx-broker-admin"}
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(client["salt"]), client["iterations"])
    assert base64.b64decode(client["password"]) == digest
    assert password not in dynsec.read_text()
    assert doc["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                                       "unsubscribe": True}
    out = capsys.readouterr()
    assert password not in out.out + out.err

    before = (password_file.read_text(), dynsec.read_text())
    assert _run(tmp_path) == 0  # again: both exist, both are left as they are
    assert (password_file.read_text(), dynsec.read_text()) == before


def test_init_needs_central_s_credential_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "--set", 'mqtt.username=""') == 1
    assert "mqtt.username and mqtt.password_file" in capsys.readouterr().err
    assert not (tmp_path / "broker").exists()
