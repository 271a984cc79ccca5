"""Issue 10, D17: one rule for every secret file of the gateway — no access by group or others (mode & 0o077 == 0).
Each kind is refused at 0640 (and 0604), with an error naming the file and the fix, and accepted at 0600."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.keystore import KeyStoreError, load_or_create_seed
from edge.secretfile import SecretFileError, check_secret_file
from tests.edge.daemon.daemon_config import config_text

BAD_MODES = [0o640, 0o660, 0o604, 0o644, 0o610]


def _expect_refused(exc: BaseException, path: Path) -> None:
    message = str(exc)
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert "group or others" in message


@pytest.mark.parametrize("mode", BAD_MODES)
def test_edge_toml_holding_a_password_inline_must_be_private(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(config_text(tmp_path / "s"))  # status.password inline
    path.chmod(mode)
    with pytest.raises(SecretFileError) as err:
        load_config(path)
    _expect_refused(err.value, path)
    assert "status.password" in str(err.value)
    assert "technician-pw-1" not in str(err.value)  # the secret itself is never quoted
    path.chmod(0o600)
    assert load_config(path).status.password == "technician-pw-1"


def test_edge_toml_with_an_inline_meter_password_must_be_private(tmp_path: Path) -> None:
    pw = tmp_path / "status.pw"
    pw.write_text("status-password-1\n")
    path = tmp_path / "edge.toml"
    text = config_text(tmp_path / "s").replace('password = "technician-pw-1"', f'password_file = "{pw}"')
    text += (
        '\n[[bus]]\nname = "d"\nkind = "dlms-tcp"\nhost = "127.0.0.1"\nport = 4059\n'
        '\n[[meter]]\nserial = "D-1"\nbus = "d"\nmodel = "generic-dlms"\nauth = "low"\npassword = "meter-lls"\n'
    )
    path.write_text(text)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match=r"meter\[0\]\.password"):
        load_config(path)


def test_edge_toml_without_inline_secrets_may_be_world_readable(tmp_path: Path) -> None:
    pw = tmp_path / "status.pw"
    pw.write_text("status-password-1\n")
    path = tmp_path / "edge.toml"
    path.write_text(config_text(tmp_path / "s").replace('password = "technician-pw-1"', f'password_file = "{pw}"'))
    path.chmod(0o644)
    assert load_config(path).status.password == "status-password-1"


@pytest.mark.parametrize("section", ["status", "mqtt"])
@pytest.mark.parametrize("mode", BAD_MODES)
def test_password_files_must_be_private(tmp_path: Path, section: str, mode: int) -> None:
    pw = tmp_path / f"{section}.pw"
    pw.write_text("a-long-password-1\n")
    pw.chmod(mode)
    text = config_text(tmp_path / "s")
    if section == "status":
        text = text.replace('password = "technician-pw-1"', f'password_file = "{pw}"')
    else:
        text = text.replace('port = 1883\n', f'port = 1883\nusername = "gw"\npassword_file = "{pw}"\n', 1)
    path = tmp_path / "edge.toml"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    _expect_refused(err.value, pw)
    assert f"{section}.password_file" in str(err.value)
    pw.chmod(0o600)
    load_config(path)


@pytest.mark.parametrize("mode", BAD_MODES)
def test_tls_client_key_file_must_be_private(tmp_path: Path, mode: int) -> None:
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "c.key"
    for f in (ca, cert, key):
        f.write_text("-----BEGIN X-----\n")
    key.chmod(mode)
    path = tmp_path / "edge.toml"
    path.write_text(
        config_text(tmp_path / "s").replace(
            "\n[outbox]", f'\n[mqtt.tls]\nca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n\n[outbox]', 1
        )
    )
    path.chmod(0o600)
    with pytest.raises(SecretFileError) as err:
        load_config(path)
    _expect_refused(err.value, key)
    key.chmod(0o600)
    load_config(path)


@pytest.mark.parametrize("mode", BAD_MODES)
def test_device_key_must_be_private(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "state" / "device.key"
    load_or_create_seed(path)
    os.chmod(path, mode)
    with pytest.raises(KeyStoreError) as err:
        load_or_create_seed(path)
    _expect_refused(err.value, path)


def test_the_rule_is_no_group_or_other_bits(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text("x")
    for mode in range(0o1000):
        f.chmod(mode | 0o400)
        if mode & 0o077:
            with pytest.raises(SecretFileError):
                check_secret_file(f, "secret")
        else:
            check_secret_file(f, "secret")
    check_secret_file(tmp_path / "missing", "secret")  # a missing file is the caller's error to report
