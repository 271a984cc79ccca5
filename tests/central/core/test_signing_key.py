"""Central's message-signing key (protocol v1.1, issue 10 D2): ``signing-key init|show``, the key file's permission
check, and ``serve`` refusing to start with MQTT but without a usable key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from central.cli import main
from central.config import from_mapping
from central.errors import ConfigError
from central.serve import run
from central.signing import load_signing_key
from protocol.keys import public_key_from_device_id


def _config_file(tmp_path: Path, key_file: Path) -> Path:
    f = tmp_path / "central.toml"
    f.write_text(f'[auth]\njwt_secret = "{"s" * 48}"\n[mqtt]\nsigning_key_file = "{key_file}"\n')
    f.chmod(0o600)  # it holds the JWT secret inline
    return f


def test_init_creates_a_private_key_and_show_prints_the_pinnable_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "keys" / "central-signing.key"
    cfg = _config_file(tmp_path, key_file)
    assert main(["-c", str(cfg), "signing-key", "init"]) == 0
    created = capsys.readouterr().out.strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in created  # the seed is never printed
    # The printed key is what a gateway pins: base58 of the 32-byte public key, like a device id.
    assert public_key_from_device_id(created) == load_signing_key(str(key_file)).public_key
    seed = key_file.read_text()
    assert main(["-c", str(cfg), "signing-key", "init"]) == 0  # idempotent: never replaces the key
    assert capsys.readouterr().out.strip() == created
    assert key_file.read_text() == seed
    assert main(["-c", str(cfg), "signing-key", "show"]) == 0
    assert capsys.readouterr().out.strip() == created


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o640])
def test_a_key_file_group_or_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "k"
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        load_signing_key(str(key_file))
    assert "abab" not in str(info.value)
    key_file.chmod(0o600)
    assert load_signing_key(str(key_file)).seed == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("content", ["", "zz" * 32, "ab" * 31, "\xff"])
def test_an_invalid_key_file_is_a_clear_error_without_its_content(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "k"
    key_file.write_text(content, encoding="latin-1")
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match=r"mqtt\.signing_key_file") as info:
        load_signing_key(str(key_file))
    assert "zzzz" not in str(info.value)
    with pytest.raises(ConfigError, match=r"does not exist \(create it with: gridtokenx-central -c <config> "
                                          r"signing-key init\)"):
        load_signing_key(str(tmp_path / "missing"))


def test_serve_refuses_to_start_with_mqtt_but_no_signing_key(tmp_path: Path) -> None:
    # An unreachable database: the key is checked before any migration is attempted.
    config = from_mapping({"auth": {"jwt_secret": "s" * 48}, "database": {"dsn": "postgresql://nobody@127.0.0.1:1/x"}})
    with pytest.raises(ConfigError, match="signing_key_file must be set"):
        run(config, None, [])
    missing = from_mapping({"auth": {"jwt_secret": "s" * 48}, "database": {"dsn": "postgresql://nobody@127.0.0.1:1/x"},
                            "mqtt": {"signing_key_file": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match="does not exist"):
        run(missing, None, [])
