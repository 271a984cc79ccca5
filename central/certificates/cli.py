"""``gridtokenx-central keys rotate --role rec-authority``: the certificate issuer's key rotation over every
certificate mint in the database (``central.certificates.rotation``), called from ``central.cli``."""

from __future__ import annotations

import asyncio
import json

from solders.pubkey import Pubkey

from central.certificates.rotation import rotate_issuer
from central.db.pool import connect
from central.ledger.config import LedgerConfig
from central.ledger.keystore import open_key_store
from central.ledger.rotation import Rotation
from central.ledger.setup import load_setup, open_ledger


async def rotate_issuer_with(dsn: str, config: LedgerConfig) -> Rotation:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT mint, status FROM certificates ORDER BY issued_at, id")
    finally:
        await conn.close()
    mints = [Pubkey.from_string(r["mint"]) for r in rows if r["status"] != "issuing"]
    issuing = sum(1 for r in rows if r["status"] == "issuing")
    keys = open_key_store(config)
    ledger = open_ledger(config)
    try:
        return await rotate_issuer(ledger, keys, load_setup(config, keys).fee_payer, mints, issuing=issuing)
    finally:
        await ledger.close()
        keys.close()


def rotate_issuer_command(dsn: str, config: LedgerConfig) -> int:
    print(json.dumps(asyncio.run(rotate_issuer_with(dsn, config)).describe(), indent=2))
    return 0
