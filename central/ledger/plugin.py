"""Ledger plug-in: builds the configured ``Ledger`` adapter for the app and serves the embedded ledger's JSON-RPC.

- ``app[LEDGER]``: the ``Ledger`` (port) every subsystem uses; ``app[LEDGER_SETUP]``: the platform keys and mints
  (absent until ``gridtokenx-central ledger init`` has run, unless ``ledger.create_keys`` lets the app run it).
- Embedded backend and several worker processes: exactly one process owns the ledger directory (file lock) and
  serves JSON-RPC on ``ledger.rpc_host:rpc_port``; the others use the rpc adapter against that endpoint. The endpoint
  runs within ``rpc_limits(config)`` (no ``requestAirdrop`` unless ``ledger.rpc_airdrop = true``).
- ``GET /api/v1/ledger`` (public): backend, JSON-RPC URL, mints and decimals, treasury, current slot.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from central.app import Registry
from central.http import PUBLIC, Call, RouteTable
from central.http.errors import ApiError
from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.errors import KeyFileError, LedgerError, LedgerStoreError
from central.ledger.jsonrpc import JsonRpcServer, RpcLimits, serve
from central.ledger.port import Ledger
from central.ledger.rpc import RpcLedger
from central.ledger.setup import LedgerSetup, init_ledger, load_setup

log = logging.getLogger(__name__)

LEDGER = web.AppKey("gtx.ledger", Ledger)
LEDGER_SETUP = web.AppKey("gtx.ledger_setup", LedgerSetup)
LEDGER_CONFIG = web.AppKey("gtx.ledger_config", LedgerConfig)
LEDGER_RPC_URL = web.AppKey("gtx.ledger_rpc_url", str)

routes = RouteTable(tag="ledger")


@dataclass(frozen=True)
class LedgerInfo:
    backend: str
    rpc_url: str
    slot: int
    initialised: bool
    energy_mint: str | None
    energy_decimals: int | None
    quote_mint: str | None
    quote_decimals: int | None
    treasury: str | None


@routes.get("/api/v1/ledger", access=PUBLIC, response=LedgerInfo, errors=(503,),
            summary="Ledger backend, JSON-RPC URL, mints and current slot")
async def ledger_info(call: Call[None, None]) -> LedgerInfo:
    app = call.app
    try:
        slot = await app[LEDGER].get_slot()
    except LedgerError as e:
        raise ApiError(503, "ledger_unavailable", str(e)) from None
    setup = app.get(LEDGER_SETUP)
    return LedgerInfo(
        backend=app[LEDGER_CONFIG].backend, rpc_url=app[LEDGER_RPC_URL], slot=slot, initialised=setup is not None,
        energy_mint=str(setup.energy_mint) if setup else None,
        energy_decimals=setup.energy_decimals if setup else None,
        quote_mint=str(setup.quote_mint) if setup else None,
        quote_decimals=setup.quote_decimals if setup else None,
        treasury=str(setup.treasury.pubkey) if setup else None)


def rpc_limits(cfg: LedgerConfig) -> RpcLimits:
    """The JSON-RPC endpoint's limits from ``[ledger]`` (airdrops only with ``rpc_airdrop = true``)."""
    return RpcLimits(airdrop=cfg.rpc_airdrop, airdrop_max_lamports=cfg.rpc_airdrop_max_lamports,
                     airdrop_lamports_per_address=cfg.rpc_airdrop_lamports_per_address,
                     airdrops_per_window=cfg.rpc_airdrops_per_hour, airdrop_window_s=3600.0,
                     max_batch=cfg.rpc_max_batch, max_body_bytes=cfg.rpc_max_body_bytes)


def _ledger_ctx(cfg: LedgerConfig):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        server: JsonRpcServer | None = None
        ledger: Ledger
        owner = False
        if cfg.backend == "embedded":
            try:
                ledger = EmbeddedLedger(EmbeddedConfig(data_dir=cfg.data_dir, slot_ms=cfg.slot_ms,
                                                       fsync_interval=cfg.fsync_interval_ms / 1000))
                owner = True
            except LedgerStoreError as e:
                if "in use" not in str(e) or cfg.rpc_port == 0:
                    raise
                ledger = RpcLedger(f"http://{cfg.rpc_host}:{cfg.rpc_port}")
            if owner and cfg.serve_rpc:
                assert isinstance(ledger, EmbeddedLedger)
                server = await serve(ledger, cfg.rpc_host, cfg.rpc_port, limits=rpc_limits(cfg))
            app[LEDGER_RPC_URL] = server.url if server else f"http://{cfg.rpc_host}:{cfg.rpc_port}"
        else:
            ledger = RpcLedger(cfg.rpc_url, commitment=cfg.commitment)
            app[LEDGER_RPC_URL] = cfg.rpc_url
        app[LEDGER] = ledger
        try:
            if cfg.create_keys and owner:
                app[LEDGER_SETUP] = await init_ledger(cfg, ledger)
            else:
                try:
                    app[LEDGER_SETUP] = load_setup(cfg)
                except KeyFileError as e:
                    log.warning("ledger not initialised (run `gridtokenx-central ledger init`): %s", e)
            yield
        finally:
            if server is not None:
                await server.close()
            await ledger.close()

    return ctx


async def _ready(app: web.Application) -> None:
    if LEDGER_SETUP not in app:
        raise LedgerError("ledger not initialised: run `gridtokenx-central ledger init`")
    await app[LEDGER].get_latest_blockhash()


def install(registry: Registry) -> None:
    cfg = registry.config.ledger
    registry.app[LEDGER_CONFIG] = cfg
    registry.add_task(_ledger_ctx(cfg))
    registry.add_routes(routes)
    registry.add_ready_check("ledger", _ready)
