"""``gridtokenx-central ledger ...`` commands, called from ``central.cli`` (which owns argument parsing)."""

from __future__ import annotations

import asyncio
import json

from central.ledger.config import LedgerConfig
from central.ledger.keystore import open_key_store
from central.ledger.rotation import Rotation, rotate_fee_payer, rotate_mint_authority
from central.ledger.setup import REC_ISSUER_ROLE, describe, init_ledger, open_ledger


def init_command(config: LedgerConfig) -> int:
    """``ledger init``: idempotent platform setup; prints the public addresses as JSON. ``config`` is
    ``config.ledger``. With ``create_keys`` the certificate issuer's key is created too (in the same store).
    Raises ``CentralError`` subclasses (the CLI prints them, exit 1)."""
    keys = open_key_store(config)
    try:
        setup = asyncio.run(init_ledger(config, keys=keys))
        out = describe(setup)
        if config.create_keys or keys.exists(REC_ISSUER_ROLE):
            out[REC_ISSUER_ROLE] = str(keys.load_or_create(REC_ISSUER_ROLE, create=config.create_keys)[0].pubkey)
    finally:
        keys.close()
    print(json.dumps(out, indent=2))
    return 0


#: ``keys rotate --role`` names → key store roles (the REC authority's is ``central.certificates.cli``).
ROLES = {"fee-payer": "fee_payer", "mint-authority": "mint_authority"}


def rotate_command(config: LedgerConfig, role: str) -> int:
    """``keys rotate --role fee-payer|mint-authority``: prints what moved as JSON."""
    rotate = {"fee_payer": rotate_fee_payer, "mint_authority": rotate_mint_authority}[ROLES[role]]

    async def run() -> Rotation:
        keys = open_key_store(config)
        ledger = open_ledger(config)
        try:
            return await rotate(config, ledger, keys)
        finally:
            await ledger.close()
            keys.close()

    print(json.dumps(asyncio.run(run()).describe(), indent=2))
    return 0


def show_command(config: LedgerConfig, roles: tuple[str, ...]) -> int:
    """``keys show``: each role's current public key, where it is kept and its retired keys; never a secret."""
    keys = open_key_store(config)
    try:
        out = {}
        for role in roles:
            current = keys.load(role).pubkey if keys.exists(role) else None
            out[role] = {"pubkey": str(current) if current else None, "where": keys.where(role),
                         "retired": [str(k) for k in keys.retired(role)]}
    finally:
        keys.close()
    print(json.dumps({"key_store": config.key_store, "keys": out}, indent=2))
    return 0
