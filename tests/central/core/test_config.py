"""Configuration: TOML + overrides into frozen, validated dataclasses, one typed field per table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from central.config import load_config
from central.errors import ConfigError

SECRET = "s" * 40


def test_file_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(f'[http]\nport = 9000\n[auth]\njwt_secret = "{SECRET}"\n[ledger]\nbackend = "embedded"\n'
                 'keys_dir = "/k"\n')
    f.chmod(0o600)
    cfg = load_config(f, ["http.workers=3", "database.pool_max=20", 'mqtt.host=broker.local', "ledger.rpc_port=8899"])
    assert cfg.http.port == 9000
    assert cfg.http.workers == 3
    assert cfg.database.pool_max == 20
    assert cfg.mqtt.host == "broker.local"
    assert cfg.ledger.backend == "embedded"
    assert cfg.ledger.keys_dir == Path("/k")
    assert cfg.ledger.rpc_port == 8899
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.http.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ledger.backend = "rpc"  # type: ignore[misc]
    assert SECRET not in repr(cfg), "secrets stay out of reprs"


@pytest.mark.parametrize(("overrides", "message"), [
    (["http.port=70000"], "http.port"),
    (["http.nope=1"], "http.nope: unknown key"),
    (["http.port=\"80\""], "http.port: must be an integer"),
    (["auth.jwt_secret=short"], "at least 32"),
    (["database.dsn=mysql://x"], "postgresql://"),
    (["mailer.kind=pigeon"], "mailer.kind"),
    (["noequals"], "section.key=value"),
])
def test_invalid_settings_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f'auth.jwt_secret="{SECRET}"', *overrides])


def test_missing_secret_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="jwt_secret"):
        load_config(None)
    bad = tmp_path / "bad.toml"
    bad.write_text("[http\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing\.toml: no such file \(start from the annotated "
                                          r"firmware-config/central\.example\.toml\)"):
        load_config(tmp_path / "missing.toml")
    cfg = load_config(None, [f'auth.jwt_secret_file="{tmp_path / "nope"}"'])
    with pytest.raises(ConfigError, match="cannot be read"):
        cfg.auth.secret()
    (tmp_path / "jwt").write_text("k" * 48)
    (tmp_path / "jwt").chmod(0o600)
    cfg = load_config(None, [f'auth.jwt_secret_file="{tmp_path / "jwt"}"'])
    assert cfg.auth.secret() == b"k" * 48
