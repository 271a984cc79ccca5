"""Plugs the wallet routes into the central app and, at start-up, builds the ``Chain`` (ledger + platform setup)
that wallets and minting use.

The ledger subsystem's plugin owns the ledger adapter and the platform setup; this plugin runs after it (plugin
order in ``central.app.PLUGINS``) and picks them up from the application (the ``Ledger`` and ``LedgerSetup`` it
stored) without opening a second ledger. Without a ledger, chain-backed routes answer 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from central.app import Registry
from central.ledger.embedded import EmbeddedLedger
from central.ledger.port import Ledger
from central.ledger.setup import LedgerSetup
from central.wallets.chain import Chain, chain_from_setup
from central.wallets.routes import CHAIN, ChainRef, routes

log = logging.getLogger(__name__)


def find_chain(app: web.Application) -> Chain | None:
    """The ``Chain`` from whatever ledger and setup the ledger plugin stored in ``app`` (or one set directly)."""
    ref = app.get(CHAIN)
    if ref is not None and ref.chain is not None:
        return ref.chain
    ledger = next((v for v in app.values() if isinstance(v, Ledger)), None)
    setup = next((v for v in app.values() if isinstance(v, LedgerSetup)), None)
    if ledger is None or setup is None:
        return None
    return chain_from_setup(ledger, setup, embedded=isinstance(ledger, EmbeddedLedger))


async def _chain_ctx(app: web.Application) -> AsyncIterator[None]:
    chain = find_chain(app)
    if chain is None:
        log.warning("no ledger configured: wallet balances, faucet and minting are unavailable")
    app[CHAIN].chain = chain
    yield


def install(registry: Registry) -> None:
    if CHAIN not in registry.app:
        registry.app[CHAIN] = ChainRef()
    registry.add_routes(routes)
    registry.add_task(_chain_ctx)
