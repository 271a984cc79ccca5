"""Every configuration file the repository ships parses and validates with the code that reads it in production."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from central.config import from_mapping, load_config
from edge.config import parse_config
from edge.errors import ConfigError
from edge.meter_setup import plan
from protocol.keys import DeviceKey

ROOT = Path(__file__).parents[1]
FIRMWARE = ROOT / "firmware-config"
#: Files whose ```toml examples are central configuration (tables of central.toml).
CENTRAL_EXAMPLES = ("docs/central.md", "central/ledger/config.py", "central/market/config.py")


@pytest.mark.parametrize("name", ["central.example.toml", "central.compose.toml"])
def test_central_configs_validate(name: str, tmp_path: Path) -> None:
    secret = tmp_path / "jwt.secret"
    secret.write_text("x" * 48)
    secret.chmod(0o600)
    config = load_config(FIRMWARE / name, [f'auth.jwt_secret_file="{secret}"'])
    assert config.certificates.window_s * 1000 == config.minting.window_ms


@pytest.mark.parametrize("name", ["edge.example.toml", "edge.compose.toml"])
def test_edge_configs_validate(name: str, tmp_path: Path) -> None:
    path = FIRMWARE / name
    password = tmp_path / "status.password"
    password.write_text("a-long-status-password\n")
    password.chmod(0o600)  # secret files are owner-only (edge.secretfile)
    central = DeviceKey.generate()
    central_pub = tmp_path / "central.pub"
    central_pub.write_text(central.device_id + "\n")
    central_pub.chmod(0o644)  # a public key: not subject to the secret-file rule
    broker_ca = tmp_path / "broker_ca"
    broker_ca.write_text("-----BEGIN CERTIFICATE-----\n")  # only its existence is checked here
    text = (
        path.read_text()
        .replace("/run/secrets/edge_status_password", str(password))
        .replace("/run/secrets/central_public_key", str(central_pub))
        .replace("/run/secrets/broker_ca", str(broker_ca))
        .replace("REPLACE_WITH_CENTRAL_PUBLIC_KEY", central.device_id)
    )
    config = parse_config(text, path)
    assert config.central.public_key == central.public_key
    meters = plan(config)
    assert meters.meters


def test_edge_example_refuses_to_start_until_central_key_is_filled_in() -> None:
    path = FIRMWARE / "edge.example.toml"
    with pytest.raises(ConfigError, match=r"central\.public_key: must be an Ed25519 public key in base58"):
        parse_config(path.read_text(), path)


@pytest.mark.parametrize("name", CENTRAL_EXAMPLES)
def test_central_examples_in_docs_validate(name: str) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / name).read_text(), re.S)
    assert blocks
    for block in blocks:
        raw = tomllib.loads(block)
        raw.setdefault("auth", {"jwt_secret": "x" * 40})
        from_mapping(raw, source=name)
