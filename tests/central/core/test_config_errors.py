"""Issue 11: every config error of central is one line naming the file, the line, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.config import load_config
from central.errors import ConfigError

TEXT = """\
[http]
port = 8080

[auth]
jwt_secret_file = "{secret}"

[market]
epoch_length_s = 900
fee_bps = 100

[ledger]
backend = "embedded"
rpc_port = 8899
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "reason"),
    [
        ("fee_bps = 100", "fee_bsp = 100", 9, "market.fee_bsp", "unknown key (did you mean 'fee_bps'?)"),
        ("[market]", "[markte]", 7, "markte", "unknown key (did you mean 'market'?)"),
        ("fee_bps = 100", 'fee_bps = "100"', 9, "market.fee_bps", "must be an integer, got string"),
        ("rpc_port = 8899", "rpc_port = true", 13, "ledger.rpc_port", "must be an integer, got boolean"),
        ("fee_bps = 100", "fee_bps = 20000", 9, "market.fee_bps", "must be between 0 and 10000, got 20000"),
        ("epoch_length_s = 900", "epoch_length_s = 7", 8, "market.epoch_length_s", "must divide a day (1..86400)"),
        ("port = 8080", "port = 70000", 2, "http.port", "must be between 0 and 65535, got 70000"),
        ('backend = "embedded"', 'backend = "ganache"', 12, "ledger.backend",
         "must be one of 'embedded', 'rpc', got 'ganache'"),
    ],
)
def test_typo_wrong_type_and_out_of_range_are_one_line(
    tmp_path: Path, old: str, new: str, line: int, key: str, reason: str
) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("k" * 48)
    secret.chmod(0o600)
    path = tmp_path / "central.toml"
    path.write_text(TEXT.format(secret=secret))
    assert load_config(path).market.fee_bps == 100
    path.write_text(TEXT.format(secret=secret).replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}:{line}: {key}: {reason}"


def test_an_override_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ['auth.jwt_secret="' + "s" * 40 + '"', "market.fee_bps=-1"])
    assert str(err.value) == "--set market.fee_bps: must be between 0 and 10000, got -1"
