"""Issue 10, D17: one rule for every secret file of central — no access by group or others (mode & 0o077 == 0) —
checked for each kind, at start before the database is touched, with an error naming the setting, the file and the
fix (never the content)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from central.cli import main
from central.config import MailerConfig, MqttConfig, load_config
from central.errors import ConfigError
from central.identity.mailer import SmtpMailer
from central.ledger.errors import KeyFileError
from central.ledger.keys import load_key, load_or_create_key
from central.mqtt import PahoMqtt
from central.secretfile import SecretFileError, check_secret_file

SECRET = "s" * 48
BAD_MODES = [0o640, 0o660, 0o604, 0o644, 0o620]
#: nothing listens here: a command that reached the database would fail with a connection error instead
NO_DATABASE = "database.dsn=\"postgresql://nobody@127.0.0.1:1/none\""


def _secret(tmp_path: Path, name: str, mode: int) -> Path:
    p = tmp_path / name
    p.write_text(SECRET + "\n")
    p.chmod(mode)
    return p


def _refused(message: str, setting: str, path: Path) -> None:
    assert setting in message
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert SECRET not in message


@pytest.mark.parametrize("mode", BAD_MODES)
def test_jwt_secret_file_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    secret = _secret(tmp_path, "jwt", mode)
    cfg = load_config(None, [f'auth.jwt_secret_file="{secret}"', f'ledger.keys_dir="{tmp_path / "keys"}"'])
    with pytest.raises(ConfigError) as err:
        cfg.auth.secret()
    _refused(str(err.value), "auth.jwt_secret_file", secret)
    with pytest.raises(SecretFileError):
        cfg.check_secret_files()
    secret.chmod(0o600)
    assert cfg.auth.secret() == SECRET.encode()
    cfg.check_secret_files()


@pytest.mark.parametrize("mode", BAD_MODES)
def test_mqtt_password_file_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    pw = _secret(tmp_path, "mqtt.pw", mode)
    cfg = load_config(None, [f'auth.jwt_secret="{SECRET}"', 'mqtt.username="central"', f'mqtt.password_file="{pw}"'])
    with pytest.raises(SecretFileError) as err:
        cfg.check_secret_files()
    _refused(str(err.value), "mqtt.password_file", pw)
    with pytest.raises(SecretFileError):
        PahoMqtt(MqttConfig(username="central", password_file=str(pw)))
    pw.chmod(0o600)
    cfg.check_secret_files()


@pytest.mark.parametrize("mode", BAD_MODES)
def test_smtp_password_file_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    pw = _secret(tmp_path, "smtp.pw", mode)
    cfg = load_config(None, [f'auth.jwt_secret="{SECRET}"', f'mailer.smtp_password_file="{pw}"'])
    with pytest.raises(SecretFileError) as err:
        cfg.check_secret_files()
    _refused(str(err.value), "mailer.smtp_password_file", pw)
    with pytest.raises(SecretFileError):
        SmtpMailer(MailerConfig(kind="smtp", smtp_password_file=str(pw)))
    pw.chmod(0o600)
    cfg.check_secret_files()
    SmtpMailer(MailerConfig(kind="smtp", smtp_password_file=str(pw)))


@pytest.mark.parametrize("mode", BAD_MODES)
def test_ledger_keypairs_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    path = keys / "fee_payer.json"
    load_or_create_key("fee_payer", path, create=True)
    os.chmod(path, mode)
    cfg = load_config(None, [f'auth.jwt_secret="{SECRET}"', f'ledger.keys_dir="{keys}"'])
    with pytest.raises(SecretFileError) as err:
        cfg.check_secret_files()
    _refused(str(err.value), "ledger.keys_dir", path)
    with pytest.raises(KeyFileError, match=f"chmod 600 {path}"):
        load_key("fee_payer", path)
    os.chmod(path, 0o600)
    cfg.check_secret_files()
    load_key("fee_payer", path)


def test_every_command_checks_secret_files_before_touching_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = _secret(tmp_path, "mqtt.pw", 0o640)
    args = ["--set", f'auth.jwt_secret="{SECRET}"', "--set", 'mqtt.username="central"',
            "--set", f'mqtt.password_file="{pw}"', "--set", NO_DATABASE,
            "--set", f'ledger.keys_dir="{tmp_path / "keys"}"']
    assert main([*args, "migrate"]) == 1
    err = capsys.readouterr().err
    _refused(err, "mqtt.password_file", pw)


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
    check_secret_file(tmp_path / "missing", "secret")


def test_config_file_holding_the_jwt_secret_inline_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "central.toml"
    path.write_text(f'[auth]\njwt_secret = "{SECRET}"\n')
    path.chmod(0o640)
    with pytest.raises(SecretFileError) as err:
        load_config(path)
    _refused(str(err.value), "auth.jwt_secret", path)
    path.chmod(0o600)
    assert load_config(path).auth.secret() == SECRET.encode()
    other = tmp_path / "plain.toml"
    other.write_text('[http]\nport = 8080\n')
    other.chmod(0o644)  # no secret inside: may be readable by the service group
    load_config(other, [f'auth.jwt_secret="{SECRET}"'])
