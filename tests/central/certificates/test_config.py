"""Certificate configuration and the composition helper that builds the chain side from the ledger setup."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from central.bootstrap import certificate_chain, load_rec_issuer
from central.certificates.service import CertificateConfig
from central.config import from_mapping, parse_section
from central.errors import ConfigError
from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.platform import platform_from_setup
from central.ledger.setup import init_ledger


def test_config_from_the_certificates_table() -> None:
    config = from_mapping({"auth": {"jwt_secret": "s" * 40}, "http": {"public_base_url": "https://gtx.example/"},
                           "certificates": {"expiry_months": 6}}).certificates
    assert config.uri_base == "https://gtx.example/api/v1/certificates"
    assert config.expiry_months == 6
    assert "solar" in config.renewable_sources
    for bad in ({"expiry_months": 0}, {"window_s": 7}, {"colour": "green"}, {"uri_base": "ftp://x"}):
        with pytest.raises(ConfigError, match="certificates"):
            parse_section(CertificateConfig, "certificates", bad)


async def test_certificate_chain_uses_its_own_issuer_key_and_the_platform_fee_payer(tmp_path: Path) -> None:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=None))
    try:
        ledger_config = LedgerConfig(keys_dir=tmp_path / "keys", create_keys=True, data_dir=tmp_path / "ledger")
        setup = await init_ledger(ledger_config, ledger)
        config = CertificateConfig(issuer_name="REC", uri_base="https://gtx.example/api/v1/certificates")
        ops = certificate_chain(
            platform_from_setup(ledger, setup, embedded=True, rec_issuer=load_rec_issuer(ledger_config)), config
        )
        key_file = tmp_path / "keys" / "rec_issuer.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert ops.fee_payer == setup.fee_payer.pubkey
        assert ops.issuer not in {setup.fee_payer.pubkey, setup.mint_authority.pubkey}
        assert load_rec_issuer(ledger_config).pubkey == ops.issuer  # loaded, not re-made
    finally:
        await ledger.close()
