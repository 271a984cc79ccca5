"""Platform setup on the ledger (``gridtokenx-central ledger init``), idempotent.

- Platform keys from the key store (``central.ledger.keystore``: files in ``keys_dir``, created with mode 0600 when
  missing and ``create_keys``, for development; or a PKCS#11 token): mint authority, fee payer, escrow authority,
  treasury.
- The energy mint (3 decimals: 1 token = 1 kWh, 1 base unit = 1 Wh) at an address derived with
  ``create_with_seed(mint_authority, "gtx-energy-v1", token program)`` — stable, no extra key file — unless
  ``energy_mint`` names an existing one (or ``keys_dir/mints.json`` records it: written when the mint authority is
  first rotated, as the derivation then no longer points at it).
- The quote mint (6 decimals): created the same way on the embedded ledger (seed ``gtx-quote-v1``, the mint authority
  can mint it for the dev faucet); on a real cluster it is ``quote_mint`` from the configuration and only checked.
- The treasury's associated token accounts for both mints.
Running it again changes nothing; a mint that exists with other decimals or another authority is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from solders.pubkey import Pubkey
from solders.system_program import CreateAccountWithSeedParams, create_account_with_seed

from central.ledger.builder import associated_token_address, create_ata_idempotent, initialize_mint2, send_and_confirm
from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.errors import KeyFileError, KeyMissingError, LedgerError, LedgerStoreError
from central.ledger.failover import FailoverLedger
from central.ledger.keys import PlatformKey
from central.ledger.keystore import FileKeyStore, KeyStore, open_key_store
from central.ledger.port import Ledger
from central.ledger.rpc import RpcLedger
from central.ledger.tokens import MINT_SIZE, TOKEN_PROGRAM_ID, parse_mint

ENERGY_DECIMALS = 3
QUOTE_DECIMALS = 6
ENERGY_SEED = "gtx-energy-v1"
QUOTE_SEED = "gtx-quote-v1"
KEY_ROLES = ("mint_authority", "fee_payer", "escrow_authority", "treasury")
MINTS_FILE = "mints.json"
#: The certificate issuer's key role (mint authority until sealed, freeze and metadata authority of certificate
#: mints); kept in the same store, loaded by the certificates subsystem.
REC_ISSUER_ROLE = "rec_issuer"


@dataclass(frozen=True)
class LedgerSetup:
    """Everything services need to build platform transactions. Keys print only their public halves."""

    mint_authority: PlatformKey
    fee_payer: PlatformKey
    escrow_authority: PlatformKey
    treasury: PlatformKey
    energy_mint: Pubkey
    quote_mint: Pubkey
    treasury_energy: Pubkey
    treasury_quote: Pubkey
    energy_decimals: int = ENERGY_DECIMALS
    quote_decimals: int = QUOTE_DECIMALS
    token_program: Pubkey = TOKEN_PROGRAM_ID


def key_path(config: LedgerConfig, role: str) -> Path:
    return config.keys_dir / f"{role}.json"


def _keys(store: KeyStore, *, create: bool) -> dict[str, PlatformKey]:
    return {role: store.load_or_create(role, create=create)[0] for role in KEY_ROLES}


def mints_path(config: LedgerConfig) -> Path:
    """The mints' addresses, recorded when the mint authority is first rotated (they are derived from the first
    mint authority's public key, which is then no longer the current one). Public facts, kept beside the keys."""
    return config.keys_dir / MINTS_FILE


def recorded_mints(config: LedgerConfig) -> dict[str, str]:
    path = mints_path(config)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        out = {k: str(Pubkey.from_string(data[k])) for k in ("energy_mint", "quote_mint")}
    except (OSError, ValueError, KeyError, TypeError):
        raise LedgerError(f"{path} is not a mint record (JSON with energy_mint and quote_mint)") from None
    return out


def record_mints(config: LedgerConfig, setup: LedgerSetup) -> None:
    """Pin the mints' addresses (idempotent; written once, mode 600, like every JSON file in ``keys_dir``)."""
    path = mints_path(config)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"energy_mint": str(setup.energy_mint), "quote_mint": str(setup.quote_mint)}).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _setup(config: LedgerConfig, keys: dict[str, PlatformKey]) -> LedgerSetup:
    authority = keys["mint_authority"].pubkey
    recorded = recorded_mints(config)
    energy_text = config.energy_mint or recorded.get("energy_mint", "")
    quote_text = config.quote_mint or recorded.get("quote_mint", "")
    energy = (Pubkey.from_string(energy_text) if energy_text
              else Pubkey.create_with_seed(authority, ENERGY_SEED, TOKEN_PROGRAM_ID))
    quote = (Pubkey.from_string(quote_text) if quote_text
             else Pubkey.create_with_seed(authority, QUOTE_SEED, TOKEN_PROGRAM_ID))
    treasury = keys["treasury"].pubkey
    return LedgerSetup(keys["mint_authority"], keys["fee_payer"], keys["escrow_authority"], keys["treasury"],
                       energy, quote, associated_token_address(treasury, energy),
                       associated_token_address(treasury, quote))


def load_setup(config: LedgerConfig, keys: KeyStore | None = None) -> LedgerSetup:
    """The platform setup from existing keys (``keys``, else the key files of ``keys_dir``), without touching the
    ledger (service start-up)."""
    return _setup(config, _keys(keys or FileKeyStore(config.keys_dir), create=False))


def open_rpc(config: LedgerConfig) -> Ledger:
    """The rpc backend: one ``RpcLedger``, or a ``FailoverLedger`` over every URL of ``rpc_url`` + ``rpc_urls``."""
    urls = config.provider_urls
    if len(urls) == 1:
        return RpcLedger(urls[0], commitment=config.commitment)
    return FailoverLedger([RpcLedger(u, commitment=config.commitment) for u in urls],
                          retry_after_s=config.rpc_retry_after_ms / 1000, max_lag_slots=config.rpc_max_lag_slots)


def open_ledger(config: LedgerConfig) -> Ledger:
    """Build the configured adapter (composition roots only). Close it with ``await ledger.close()``.
    An embedded ledger whose directory another process owns (a running server) is reached through that
    process's JSON-RPC endpoint."""
    if config.backend == "rpc":
        return open_rpc(config)
    try:
        return EmbeddedLedger(EmbeddedConfig(data_dir=config.data_dir, slot_ms=config.slot_ms,
                                             fsync_interval=config.fsync_interval_ms / 1000))
    except LedgerStoreError as e:
        if "in use" not in str(e) or not config.serve_rpc or config.rpc_port == 0:
            raise
        return RpcLedger(f"http://{config.rpc_host}:{config.rpc_port}")


async def _ensure_mint(ledger: Ledger, setup: LedgerSetup, mint: Pubkey, seed: str | None, decimals: int) -> bool:
    """Check or create a mint; returns True if it was created."""
    acc = await ledger.get_account(mint)
    if acc is not None:
        info = parse_mint(acc)
        if info is None:
            raise LedgerError(f"{mint} exists but is not a token mint")
        if info.decimals != decimals:
            raise LedgerError(f"mint {mint} has {info.decimals} decimals, expected {decimals}")
        return False
    if seed is None:
        raise LedgerError(f"mint {mint} does not exist on this ledger")
    rent = await ledger.get_minimum_balance_for_rent_exemption(MINT_SIZE)
    authority = setup.mint_authority
    await send_and_confirm(ledger, setup.fee_payer, [
        create_account_with_seed(CreateAccountWithSeedParams(
            from_pubkey=setup.fee_payer.pubkey, to_pubkey=mint, base=authority.pubkey, seed=seed, lamports=rent,
            space=MINT_SIZE, owner=TOKEN_PROGRAM_ID)),
        initialize_mint2(mint, decimals, authority.pubkey),
    ], [authority])
    return True


async def init_ledger(config: LedgerConfig, ledger: Ledger | None = None, keys: KeyStore | None = None) -> LedgerSetup:
    """Idempotent platform setup (see module docstring). Uses ``ledger`` if given, else opens (and closes) the
    configured one; ``keys`` likewise (the configured key store). Keys are created only when
    ``config.create_keys``."""
    own = ledger is None
    own_keys = keys is None
    store = open_key_store(config) if keys is None else keys
    active = open_ledger(config) if ledger is None else ledger
    try:
        try:
            platform_keys = _keys(store, create=config.create_keys)
        except (KeyFileError, KeyMissingError) as e:
            if config.create_keys:
                raise
            raise type(e)(f"{e}; to create the platform keys (once): gridtokenx-central -c <config> "
                          "--set ledger.create_keys=true ledger init") from None
        setup = _setup(config, platform_keys)
        embedded = config.backend == "embedded"  # possibly reached through its JSON-RPC endpoint
        balance = await active.get_balance(setup.fee_payer.pubkey)
        if balance < config.min_fee_payer_lamports:
            if not embedded:
                raise LedgerError(f"fee payer {setup.fee_payer.pubkey} holds {balance} lamports, less than "
                                  f"ledger.min_fee_payer_lamports = {config.min_fee_payer_lamports}: fund it")
            await active.request_airdrop(setup.fee_payer.pubkey, 100 * config.min_fee_payer_lamports)
        await _ensure_mint(active, setup, setup.energy_mint, None if config.energy_mint else ENERGY_SEED,
                           ENERGY_DECIMALS)
        await _ensure_mint(active, setup, setup.quote_mint, QUOTE_SEED if embedded and not config.quote_mint else None,
                           QUOTE_DECIMALS)
        missing = [a for a, acc in zip((setup.treasury_energy, setup.treasury_quote),
                                       await active.get_multiple_accounts([setup.treasury_energy,
                                                                           setup.treasury_quote]), strict=True)
                   if acc is None]
        if missing:
            await send_and_confirm(active, setup.fee_payer, [
                create_ata_idempotent(setup.fee_payer.pubkey, setup.treasury.pubkey, setup.energy_mint),
                create_ata_idempotent(setup.fee_payer.pubkey, setup.treasury.pubkey, setup.quote_mint),
            ])
        return setup
    finally:
        if own:
            await active.close()
        if own_keys:
            store.close()


def describe(setup: LedgerSetup) -> dict[str, str | int]:
    """Public facts of a setup (for the CLI and logs): addresses only, never keys."""
    return {
        "mint_authority": str(setup.mint_authority.pubkey), "fee_payer": str(setup.fee_payer.pubkey),
        "escrow_authority": str(setup.escrow_authority.pubkey), "treasury": str(setup.treasury.pubkey),
        "energy_mint": str(setup.energy_mint), "energy_decimals": setup.energy_decimals,
        "quote_mint": str(setup.quote_mint), "quote_decimals": setup.quote_decimals,
        "treasury_energy": str(setup.treasury_energy), "treasury_quote": str(setup.treasury_quote),
    }
