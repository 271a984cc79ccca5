"""Plugs the wallet routes into the central app and, at start-up, builds the ``Chain`` (ledger + platform setup)
that wallets and minting use.

The ledger subsystem's plugin owns the ledger adapter and the platform setup (``app[LEDGER]``,
``app[LEDGER_SETUP]``); this plugin runs after it (plugin order in ``central.app.PLUGINS``) and builds the ``Chain``
from them, never a second ledger. Without an initialised ledger, chain-backed routes answer 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from central.app import Registry
from central.ledger.embedded import EmbeddedLedger
from central.ledger.platform import Platform as Chain
from central.ledger.platform import platform_from_setup as chain_from_setup
from central.ledger.plugin import LEDGER, LEDGER_CONFIG, LEDGER_SETUP
from central.wallets.routes import CHAIN, ChainRef, routes

log = logging.getLogger(__name__)


def find_chain(app: web.Application) -> Chain | None:
    """The ``Chain`` from the ledger plugin's ledger and platform setup (or one set directly, e.g. by a test)."""
    ref = app.get(CHAIN)
    if ref is not None and ref.chain is not None:
        return ref.chain
    ledger, setup, config = app.get(LEDGER), app.get(LEDGER_SETUP), app.get(LEDGER_CONFIG)
    if ledger is None or setup is None:
        return None
    embedded = config.backend == "embedded" if config is not None else isinstance(ledger, EmbeddedLedger)
    return chain_from_setup(ledger, setup, embedded=embedded)


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
