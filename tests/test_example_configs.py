"""Every configuration file the repository ships parses and validates with the code that reads it in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.certificates.plugin import CertificateConfig
from central.config import load_config
from central.ingest.settings import IngestSettings
from central.ledger.config import LedgerConfig
from central.market.plugin import MarketConfig
from central.minting.plugin import MintingSettings
from edge.config import parse_config
from edge.meter_setup import plan

FIRMWARE = Path(__file__).parents[1] / "firmware-config"


@pytest.mark.parametrize("name", ["central.example.toml", "central.compose.toml"])
def test_central_configs_validate(name: str, tmp_path: Path) -> None:
    secret = tmp_path / "jwt.secret"
    secret.write_text("x" * 48)
    secret.chmod(0o600)
    config = load_config(FIRMWARE / name, [f'auth.jwt_secret_file="{secret}"'])
    LedgerConfig.from_section(config.section("ledger"))
    IngestSettings.from_section(config.section("ingest"))
    MintingSettings.from_section(config.section("minting"))
    MarketConfig.from_section(config.section("market"))
    certificates = CertificateConfig.from_section(
        config.section("certificates"), default_uri_base=config.http.public_base_url
    )
    assert certificates.window_s * 1000 == MintingSettings.from_section(config.section("minting")).window_ms


@pytest.mark.parametrize("name", ["edge.example.toml", "edge.compose.toml"])
def test_edge_configs_validate(name: str, tmp_path: Path) -> None:
    path = FIRMWARE / name
    password = tmp_path / "status.password"
    password.write_text("a-long-status-password\n")
    password.chmod(0o600)  # secret files are owner-only (edge.secretfile)
    text = path.read_text().replace("/run/secrets/edge_status_password", str(password))
    config = parse_config(text, path)
    meters = plan(config)
    assert meters.meters
