"""Platform keys in a PKCS#11 token (SoftHSM2): minting, settlement and certificate issuance run with every
platform key in the token, and no code path can read a private key's bytes
(docs/decisions/0014-keys-in-pkcs11-tokens.md)."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pkcs11 import Attribute
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.app import TOKENS, create_app
from central.certificates import client
from central.certificates.operations import CertificateLedger
from central.certificates.validation import authenticity
from central.config import parse_section
from central.errors import ConfigError
from central.http.roles import Role
from central.ledger import builder, hsm
from central.ledger.config import LedgerConfig
from central.ledger.errors import KeyMissingError, KeyStoreError
from central.ledger.hsm import HsmKey
from central.ledger.keys import PlatformKey
from central.ledger.keystore import TokenKeyStore
from central.ledger.setup import KEY_ROLES
from central.wiring import certificates as certificates_wiring
from central.wiring import ledger as ledger_wiring
from gtxhsm import HsmError, Token, TokenKey
from tests.central.app_env import ledger_of, make_config
from tests.central.certificates.pg_world import T0, T0_MS, Site, link_wallet
from tests.central.hsm_platform import URI_BASE, hsm_platform, issue_certificate, mint_some, settle_one_trade
from tests.central.pg import add_user, open_pool
from tests.hsm_support import softhsm_token

settings_profile = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What a platform key may offer; nothing here returns private key material.
PLATFORM_KEY_API = {"name", "pubkey", "sign_message", "generate", "label"}
TOKEN_KEY_API = {"label", "public_key", "sign", "attribute"}


async def test_minting_settlement_and_certificates_with_every_platform_key_in_the_token(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with hsm_platform(tmp_path) as env:
        p = env.platform
        keys = [p.mint_authority, p.fee_payer, p.escrow_authority, p.issuer()]
        assert all(isinstance(k, HsmKey) for k in keys), keys
        assert isinstance(env.keys, TokenKeyStore)
        # nothing on disk holds a key: the key directory has no key file
        assert not list(env.config.keys_dir.glob("*.json"))
        assert sorted(env.keys._names()) == sorted([*KEY_ROLES, "rec_issuer"])

        await mint_some(pool, p, "HSM-1")  # energy tokens: the mint authority and fee payer sign in the token
        await settle_one_trade(pool, p)  # escrow authority and fee payer sign deposits and the settlement
        mint, cert_id, _ = await issue_certificate(p)  # the REC issuer and fee payer sign issuance
        ops = CertificateLedger(p, uri_base=URI_BASE)
        info = await ops.read_mint(mint)
        assert info is not None
        meta, problems = authenticity(ops.issuer, mint, info)
        assert problems == []
        assert meta is not None
        assert meta.certificate_id == cert_id
        assert info.freeze_authority == p.issuer().pubkey


async def test_token_keys_are_sensitive_not_extractable_and_offer_no_secret(tmp_path: Path) -> None:
    with softhsm_token(tmp_path / "hsm") as settings, Token.open(settings) as token:
        key = token.generate("gtx-fee_payer")
        assert key.attribute(Attribute.EXTRACTABLE) is False
        assert key.attribute(Attribute.SENSITIVE) is True
        assert key.attribute(Attribute.NEVER_EXTRACTABLE) is True
        with pytest.raises(HsmError, match="refused attribute VALUE"):
            key.attribute(Attribute.VALUE)  # the token refuses the private value itself
        # the signature is a real Ed25519 signature by the key's public half
        platform_key = HsmKey("fee_payer", key)
        message = b"solana transaction message bytes"
        signature = platform_key.sign_message(message)
        assert isinstance(signature, Signature)
        assert signature.verify(platform_key.pubkey, message)
        assert not signature.verify(platform_key.pubkey, message + b"!")
        # structure: neither class has anything that could hand out key bytes
        assert {n for n in dir(HsmKey) if not n.startswith("_")} <= PLATFORM_KEY_API
        assert {n for n in dir(TokenKey) if not n.startswith("_")} <= TOKEN_KEY_API
        assert not hasattr(platform_key, "signer")
        assert "secret" not in repr(platform_key).lower()
        with pytest.raises(TypeError):
            pickle.dumps(platform_key)
        with pytest.raises(TypeError):
            pickle.dumps(key)
        with pytest.raises(HsmError, match="already has a key"):
            token.generate("gtx-fee_payer")  # a key is never replaced


def test_no_module_of_the_pkcs11_path_reads_private_key_bytes() -> None:
    """The PKCS#11 path (``central.ledger.hsm``, ``gtxhsm``) never asks the token for ``CKA_VALUE`` and never builds
    a ``Keypair``: its only private-key operation is ``sign``."""
    import gtxhsm.token as token_module  # noqa: PLC0415

    for module in (hsm, token_module):
        text = Path(module.__file__ or "").read_text()
        assert "Attribute.VALUE" not in text
        assert "Keypair" not in text
        assert "from_seed" not in text
        assert "private_bytes" not in text
    assert not issubclass(HsmKey, type(PlatformKey.generate("x")))  # not a file key: no ``signer``


async def test_token_errors_name_the_token_never_the_pin(tmp_path: Path) -> None:
    with softhsm_token(tmp_path / "hsm") as settings:
        pin = settings.pin_file.read_text().strip()
        config = parse_section(LedgerConfig, "ledger", {
            "key_store": "pkcs11", "keys_dir": str(tmp_path / "k"), "hsm": {
                "module": str(settings.module), "token_label": settings.token_label,
                "pin_file": str(settings.pin_file)}})
        store = TokenKeyStore(config.hsm)
        try:
            with pytest.raises(KeyMissingError, match="gtx-mint_authority"):
                store.load("mint_authority")
        finally:
            store.close()
        settings.pin_file.write_text("0000\n")
        with pytest.raises(KeyStoreError, match="cannot log in") as wrong:
            TokenKeyStore(config.hsm)
        assert pin not in str(wrong.value)
        settings.pin_file.chmod(0o644)
        with pytest.raises(KeyStoreError, match="chmod 600"):
            TokenKeyStore(config.hsm)
        with pytest.raises(ConfigError, match="pin_file must be set"):
            parse_section(LedgerConfig, "ledger", {"key_store": "pkcs11"})
        settings.pin_file.chmod(0o600)
        with pytest.raises(KeyStoreError, match="no token labelled 'nope'"):
            TokenKeyStore(replace(config.hsm, token_label="nope"))


def test_transactions_signed_through_the_token_verify_and_match_in_memory_signing(tmp_path: Path) -> None:
    """Hypothesis: for any memo and signer set, a transaction signed through ``sign_message`` (token keys mixed with
    file keys) carries a valid signature for every signer, and for file keys the populate path is byte-identical to
    solders' own signing (Ed25519 is deterministic)."""
    with softhsm_token(tmp_path / "hsm") as token_settings, Token.open(token_settings) as token:
        payer = HsmKey("fee_payer", token.generate("gtx-fee_payer"))
        authority = HsmKey("mint_authority", token.generate("gtx-mint_authority"))

        @settings_profile
        @given(text=st.binary(min_size=1, max_size=200), extra=st.integers(min_value=0, max_value=2))
        def check(text: bytes, extra: int) -> None:
            files = [PlatformKey.generate(f"k{i}") for i in range(extra)]
            ix = builder.memo(text, [authority.pubkey, *(k.pubkey for k in files)])
            message = builder.compile_message(payer.pubkey, [ix], Hash.new_unique())
            tx = builder.sign(message, [payer, authority, *files])
            data = bytes(to_bytes_versioned(message))
            keys = builder.required_signers(message)
            assert len(tx.signatures) == len(keys) == 2 + extra
            assert all(sig.verify(key, data) for sig, key in zip(tx.signatures, keys, strict=True))
            tampered = data[:-1] + bytes([data[-1] ^ 1])
            assert not tx.signatures[0].verify(payer.pubkey, tampered)
            if files:  # in memory: the populate path equals solders' own signing
                file_message = builder.compile_message(files[0].pubkey, [builder.memo(text, [])], Hash.new_unique())
                fast = builder.sign(file_message, files)
                slow = VersionedTransaction.populate(file_message, builder.signatures_for(file_message, files))
                assert bytes(fast) == bytes(slow)

        check()


async def test_app_runs_on_token_keys_through_the_composition_root(pg_dsn: str, tmp_path: Path) -> None:
    """No test-built platform: the app opens the configured token (``ledger.key_store = "pkcs11"``), generates the
    platform keys there (``create_keys``) and issues a certificate with them over HTTP; no key file is written."""
    pool = await open_pool(pg_dsn, min_size=2, max_size=8)
    try:
        authority, prosumer = await add_user(pool, "rec_authority"), await add_user(pool, "prosumer")
        await link_wallet(pool, prosumer, Keypair())
        site = Site(pool, prosumer, "SN-HSM-1")
        await site.install()
        await site.produce(T0_MS, 15, 10)
        with softhsm_token(tmp_path / "hsm") as token:
            hsm_table = {"module": str(token.module), "token_label": token.token_label,
                         "pin_file": str(token.pin_file)}
            config = make_config(pg_dsn, tmp_path, ledger={"create_keys": True, "serve_rpc": False,
                                                           "key_store": "pkcs11", "hsm": hsm_table})
            app = create_app(config, subsystems=(ledger_wiring.SUBSYSTEM, certificates_wiring.SUBSYSTEM))
            bearer = app[TOKENS].issue(authority, Role.REC_AUTHORITY)[0]
            test_client = TestClient(TestServer(app))
            await test_client.start_server()
            try:
                platform_keys = ledger_of(test_client.app).setup
                assert platform_keys is not None
                assert isinstance(platform_keys.fee_payer, HsmKey)
                async with aiohttp.ClientSession(str(test_client.make_url(""))) as session:
                    cert = await client.issue(session, bearer, str(site.meter_id), T0, T0 + timedelta(minutes=15))
                    report = await client.validate(session, certificate_id=cert["id"])
            finally:
                await test_client.close()
        assert cert["energy_wh"] == 150
        assert report["valid"] is True
        assert not list((tmp_path / "keys").glob("*.json"))  # every key stayed in the token
    finally:
        await pool.close()
