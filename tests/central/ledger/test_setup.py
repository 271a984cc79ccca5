"""``init_ledger``: keys, mints and treasury accounts, idempotent, on the embedded ledger (in-process and through
JSON-RPC with the quote mint from configuration)."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from central.config import parse_section
from central.errors import ConfigError
from central.ledger.cli import init_command
from central.ledger.config import LedgerConfig
from central.ledger.errors import KeyFileError, LedgerError
from central.ledger.jsonrpc import RpcLimits, serve
from central.ledger.setup import init_ledger, key_path, load_setup, open_ledger
from central.ledger.tokens import parse_mint


def dev_config(tmp_path: Path, **kw: object) -> LedgerConfig:
    return parse_section(LedgerConfig, "ledger", {"data_dir": str(tmp_path / "ledger"),
                                                  "keys_dir": str(tmp_path / "keys"), "slot_ms": 0,
                                                  "create_keys": True, **kw})


async def test_init_creates_everything_once_and_survives_restart(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = dev_config(tmp_path)
    setup = await init_ledger(cfg)
    for role in ("mint_authority", "fee_payer", "escrow_authority", "treasury"):
        assert (key_path(cfg, role).stat().st_mode & 0o777) == 0o600
    ledger = open_ledger(cfg)
    try:
        for mint, decimals in ((setup.energy_mint, 3), (setup.quote_mint, 6)):
            acc = await ledger.get_account(mint)
            assert acc is not None
            info = parse_mint(acc)
            assert info is not None
            assert (info.decimals, info.mint_authority, info.supply) == (decimals, setup.mint_authority.pubkey, 0)
        for ata in (setup.treasury_energy, setup.treasury_quote):
            bal = await ledger.get_token_account_balance(ata)
            assert bal is not None
            assert bal.amount == 0
        second = await init_ledger(cfg, ledger)  # idempotent, same addresses, same keys
        assert second == setup
    finally:
        await ledger.close()
    assert load_setup(cfg) == setup
    secrets = [str(k.signer) for k in (setup.mint_authority, setup.fee_payer, setup.escrow_authority,
                                       setup.treasury)]
    text = repr(setup) + caplog.text
    assert not any(s in text for s in secrets)


async def test_init_without_keys_in_production_mode_fails_clearly(tmp_path: Path) -> None:
    cfg = dev_config(tmp_path, create_keys=False)
    with pytest.raises(KeyFileError, match="mint_authority key file .* does not exist; to create the platform keys "
                                           r"\(once\): gridtokenx-central -c <config> --set ledger.create_keys=true"):
        await init_ledger(cfg)


async def test_rpc_backend_uses_configured_quote_mint(tmp_path: Path) -> None:
    dev = dev_config(tmp_path)
    dev_setup = await init_ledger(dev)  # a "cluster" that already has a quote token
    cluster = open_ledger(dev)
    server = await serve(cluster, "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        rpc_cfg = parse_section(LedgerConfig, "ledger", {
            "backend": "rpc", "rpc_url": server.url, "keys_dir": str(tmp_path / "prod-keys"), "create_keys": True,
            "quote_mint": str(dev_setup.quote_mint)})
        # The new platform's fee payer must be funded on a real cluster: init says so instead of guessing.
        with pytest.raises(LedgerError, match="fund it"):
            await init_ledger(rpc_cfg)
        fee_payer = load_setup(rpc_cfg).fee_payer.pubkey
        await cluster.request_airdrop(fee_payer, 5 * 10**9)  # type: ignore[union-attr]
        setup = await init_ledger(rpc_cfg)
        assert setup.quote_mint == dev_setup.quote_mint
        assert setup.energy_mint != dev_setup.energy_mint
        assert await init_ledger(rpc_cfg) == setup
        wrong = parse_section(LedgerConfig, "ledger", {
            "backend": "rpc", "rpc_url": server.url, "keys_dir": str(tmp_path / "prod-keys"),
            "quote_mint": str(setup.energy_mint)})  # 3 decimals, not 6
        with pytest.raises(LedgerError, match="decimals"):
            await init_ledger(wrong)
    finally:
        await server.close()
        await cluster.close()


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match=r"ledger\.backend"):
        parse_section(LedgerConfig, "ledger", {"backend": "ganache"})
    with pytest.raises(ConfigError, match=r"ledger\.quote_mint: is required"):
        parse_section(LedgerConfig, "ledger", {"backend": "rpc", "rpc_url": "http://127.0.0.1:8899"})
    with pytest.raises(ConfigError, match=r"ledger\.nope: unknown key"):
        parse_section(LedgerConfig, "ledger", {"nope": 1})
    with pytest.raises(ConfigError, match="integer"):
        parse_section(LedgerConfig, "ledger", {"slot_ms": "fast"})


async def test_init_reaches_a_running_embedded_ledger_through_its_endpoint(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dev_config(tmp_path, rpc_port=port)
    running = open_ledger(cfg)  # the server process owns the directory
    # `ledger init` tops the fee payer up by airdrop: through the endpoint only in development mode.
    server = await serve(running, "127.0.0.1", port, limits=RpcLimits(airdrop=True))  # type: ignore[arg-type]
    try:
        setup = await init_ledger(cfg)  # falls back to JSON-RPC: the directory is locked
        acc = await running.get_account(setup.quote_mint)
        assert acc is not None
        info = parse_mint(acc)
        assert info is not None
        assert info.decimals == 6
    finally:
        await server.close()
        await running.close()


def test_cli_init_prints_addresses_not_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = parse_section(LedgerConfig, "ledger", {"data_dir": str(tmp_path / "ledger"),
                                                    "keys_dir": str(tmp_path / "keys"), "slot_ms": 0,
                                                    "create_keys": True})
    assert init_command(config) == 0
    out = json.loads(capsys.readouterr().out)
    setup = load_setup(config)
    assert out["energy_mint"] == str(setup.energy_mint)
    assert str(setup.fee_payer.signer) not in json.dumps(out)
    assert init_command(config) == 0  # idempotent
