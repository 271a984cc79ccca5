"""Key rotation on the embedded ledger, with every platform key in a SoftHSM2 token: tokens and certificates from
before a rotation stay valid, the new keys mint, settle and issue, and the old keys can no longer mint or freeze."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from solders.keypair import Keypair

from central.certificates.instructions import holder_account
from central.certificates.operations import CertificateLedger
from central.certificates.rotation import ISSUER_ROLE, rotate_issuer
from central.certificates.token2022 import freeze_account
from central.certificates.validation import authenticity
from central.cli import main
from central.ledger.builder import associated_token_address, create_ata_idempotent, mint_to_checked, send_and_confirm
from central.ledger.errors import TransactionFailedError
from central.ledger.hsm import HsmKey
from central.ledger.platform import Platform, platform_from_setup
from central.ledger.rotation import rotate_fee_payer, rotate_mint_authority
from central.ledger.setup import load_setup
from tests.central.accounting.acct_mint_env import T0, W, energy_balance, energy_supply, minted_wh_in_db
from tests.central.hsm_platform import (
    URI_BASE,
    HsmPlatform,
    hsm_platform,
    issue_certificate,
    mint_some,
    settle_one_trade,
)


def reloaded(env: HsmPlatform) -> Platform:
    """The platform as central builds it at its next start, from the key store."""
    return platform_from_setup(
        env.ledger, load_setup(env.config, env.keys), embedded=True, rec_issuer=env.keys.load(ISSUER_ROLE),
        past_issuers=tuple(env.keys.retired(ISSUER_ROLE)),
    )


async def test_rotating_mint_authority_fee_payer_and_rec_authority(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with hsm_platform(tmp_path) as env:
        before = env.platform
        wallet_1, minted_1 = await mint_some(pool, before, "ROT-1")
        cert_1, cert_1_id, owner_1 = await issue_certificate(before)

        # --- mint authority
        old_authority = before.mint_authority
        rotation = await rotate_mint_authority(env.config, env.ledger, env.keys)
        assert rotation.old == old_authority.pubkey
        assert rotation.retired_as == "mint_authority.retired-1"
        assert len(rotation.moved) == 2  # the energy mint and (embedded ledger) the quote mint
        after = reloaded(env)
        assert isinstance(after.mint_authority, HsmKey)
        assert after.mint_authority.pubkey == rotation.new != old_authority.pubkey
        assert after.energy_mint == before.energy_mint  # pinned in keys_dir/mints.json, no longer derived
        assert json.loads((env.config.keys_dir / "mints.json").read_text())["energy_mint"] == str(before.energy_mint)
        # the old key can no longer mint
        victim = Keypair().pubkey()
        with pytest.raises(TransactionFailedError):
            await send_and_confirm(env.ledger, after.fee_payer, [
                create_ata_idempotent(after.fee_payer.pubkey, victim, after.energy_mint),
                mint_to_checked(after.energy_mint, associated_token_address(victim, after.energy_mint),
                                old_authority.pubkey, amount=1, decimals=3),
            ], [old_authority])
        # the new one mints through the outbox; what was minted before stays where it was
        wallet_2, minted_2 = await mint_some(pool, after, "ROT-2", start_ms=T0 + 4 * W)
        assert await energy_balance(after, wallet_1) == minted_1
        assert await energy_balance(after, wallet_2) == minted_2
        assert await energy_supply(after) == await minted_wh_in_db(pool) == minted_1 + minted_2

        # --- fee payer
        old_payer = after.fee_payer
        payer_balance = await env.ledger.get_balance(old_payer.pubkey)
        rotation = await rotate_fee_payer(env.config, env.ledger, env.keys)
        after = reloaded(env)
        assert after.fee_payer.pubkey == rotation.new != old_payer.pubkey
        assert await env.ledger.get_balance(rotation.new) > payer_balance - 10**7
        assert await env.ledger.get_balance(old_payer.pubkey) < 10**7  # only the rent-exempt remainder
        await settle_one_trade(pool, after)  # deposits and settlement paid by the new fee payer
        await mint_some(pool, after, "ROT-3", start_ms=T0 + 8 * W, check_supply=False)  # traders were funded

        # --- REC authority
        old_issuer = after.issuer()
        rotation = await rotate_issuer(env.ledger, env.keys, after.fee_payer, [cert_1])
        after = reloaded(env)
        assert after.issuer().pubkey == rotation.new != old_issuer.pubkey
        assert after.past_issuers == (old_issuer.pubkey,)
        ops = CertificateLedger(after, uri_base=URI_BASE)
        info = await ops.read_mint(cert_1)
        assert info is not None
        assert info.freeze_authority == rotation.new
        assert info.metadata is not None
        assert info.metadata.update_authority == rotation.new
        meta, problems = authenticity(ops.issuer, cert_1, info, ops.past_issuers)  # issued before: still valid
        assert problems == []
        assert meta is not None
        assert meta.certificate_id == cert_1_id
        assert await ops.balance(cert_1, owner_1) == 1500
        cert_2, _, _ = await issue_certificate(after)  # the new issuer issues
        info_2 = await ops.read_mint(cert_2)
        assert info_2 is not None
        assert authenticity(ops.issuer, cert_2, info_2, ops.past_issuers)[1] == []
        with pytest.raises(TransactionFailedError):  # the old issuer can no longer freeze a holder
            await send_and_confirm(env.ledger, after.fee_payer,
                                   [freeze_account(holder_account(owner_1, cert_1), cert_1, old_issuer.pubkey)],
                                   [old_issuer])
        # without the retired key's public key, the old certificate's address would not be the issuer's
        assert authenticity(ops.issuer, cert_1, info)[1] == ["mint address is not the issuer's address for this "
                                                              "certificate id"]

        assert sorted(env.keys.retired_names("fee_payer")) == ["fee_payer.retired-1"]
        assert env.keys.retired_names(ISSUER_ROLE) == ["rec_issuer.retired-1"]


async def test_interrupted_rotation_is_finished_by_running_it_again(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with hsm_platform(tmp_path) as env:
        old = env.platform.mint_authority
        nxt = env.keys.next_key("mint_authority", create=True)  # a run that stopped after creating the next key
        assert nxt is not None
        rotation = await rotate_mint_authority(env.config, env.ledger, env.keys)
        assert rotation.new == nxt.pubkey  # the same next key, not another one
        assert rotation.old == old.pubkey
        await mint_some(pool, reloaded(env), "RESUME-1")


def test_keys_commands_on_file_keys(pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = ["--set", f'ledger.data_dir="{tmp_path / "ledger"}"', "--set", f'ledger.keys_dir="{tmp_path / "keys"}"',
            "--set", "ledger.create_keys=true", "--set", "ledger.serve_rpc=false", "--set", "mqtt.enabled=false",
            "--set", f'database.dsn="{pg_dsn}"', "--set", f'auth.jwt_secret="{"k" * 40}"']
    assert main([*sets, "ledger", "init"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*sets, "keys", "rotate", "--role", "fee-payer"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["old"] == first["fee_payer"]
    assert main([*sets, "keys", "rotate", "--role", "mint-authority"]) == 0
    assert main([*sets, "keys", "rotate", "--role", "rec-authority"]) == 0  # no certificates yet: only the key
    capsys.readouterr()
    assert main([*sets, "keys", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["key_store"] == "file"
    assert shown["keys"]["fee_payer"]["pubkey"] == rotated["new"]
    assert shown["keys"]["fee_payer"]["retired"] == [first["fee_payer"]]
    assert shown["keys"]["mint_authority"]["retired"] == [first["mint_authority"]]
    assert len(shown["keys"]["rec_issuer"]["retired"]) == 1
    assert (tmp_path / "keys" / "fee_payer.retired-1.json").stat().st_mode & 0o777 == 0o600
    assert main([*sets, "ledger", "init"]) == 0  # the platform still initialises: same mints, new keys
    again = json.loads(capsys.readouterr().out)
    assert again["energy_mint"] == first["energy_mint"]
    assert again["fee_payer"] == rotated["new"]
