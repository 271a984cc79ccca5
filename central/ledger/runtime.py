"""The ledger adapter of a running app, opened once at start-up by the composition root (``central.app``).

- Embedded backend and several worker processes: exactly one process owns the ledger directory (file lock) and
  serves JSON-RPC on ``ledger.rpc_host:rpc_port``; the others use the rpc adapter against that endpoint. The endpoint
  runs within :func:`rpc_limits` (no ``requestAirdrop`` unless ``ledger.rpc_airdrop = true``).
- The platform setup (keys and mints) is loaded, or created when ``ledger.create_keys`` and this process owns the
  ledger; without it (before ``gridtokenx-central ledger init``) ``setup`` is None and the chain-backed services are
  unavailable.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.errors import KeyFileError, KeyMissingError, LedgerError, LedgerStoreError
from central.ledger.jsonrpc import JsonRpcServer, RpcLimits, serve
from central.ledger.keystore import KeyStore, open_key_store
from central.ledger.port import Ledger
from central.ledger.rpc import RpcLedger
from central.ledger.setup import LedgerSetup, init_ledger, load_setup, open_rpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerRuntime:
    """The ``Ledger`` (port) every subsystem uses, the platform setup (None until ``ledger init``), the ledger
    config and the JSON-RPC URL clients should use."""

    ledger: Ledger
    setup: LedgerSetup | None
    config: LedgerConfig
    rpc_url: str
    #: where the platform's keys are (files or a PKCS#11 token); open while the runtime is
    keys: KeyStore | None = None

    async def check_ready(self) -> None:
        if self.setup is None:
            raise LedgerError("ledger not initialised: run `gridtokenx-central ledger init`")
        await self.ledger.get_latest_blockhash()


def rpc_limits(cfg: LedgerConfig) -> RpcLimits:
    """The JSON-RPC endpoint's limits from ``[ledger]`` (airdrops only with ``rpc_airdrop = true``)."""
    return RpcLimits(airdrop=cfg.rpc_airdrop, airdrop_max_lamports=cfg.rpc_airdrop_max_lamports,
                     airdrop_lamports_per_address=cfg.rpc_airdrop_lamports_per_address,
                     airdrops_per_window=cfg.rpc_airdrops_per_hour, airdrop_window_s=3600.0,
                     max_batch=cfg.rpc_max_batch, max_body_bytes=cfg.rpc_max_body_bytes)


@contextlib.asynccontextmanager
async def running_ledger(cfg: LedgerConfig) -> AsyncIterator[LedgerRuntime]:
    """Open the configured ledger (and serve its JSON-RPC when this process owns an embedded one) for the block."""
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
            server = await serve(ledger, cfg.rpc_host, cfg.rpc_port, limits=rpc_limits(cfg),
                                 ws_port=cfg.rpc_ws_port if cfg.rpc_port else 0)
        rpc_url = server.url if server else f"http://{cfg.rpc_host}:{cfg.rpc_port}"
    else:
        ledger = open_rpc(cfg)
        rpc_url = cfg.provider_urls[0]
    keys: KeyStore | None = None
    try:
        keys = open_key_store(cfg)
        setup: LedgerSetup | None = None
        if cfg.create_keys and owner:
            setup = await init_ledger(cfg, ledger, keys)
        else:
            try:
                setup = load_setup(cfg, keys)
            except (KeyFileError, KeyMissingError) as e:
                log.warning("ledger not initialised (run `gridtokenx-central ledger init`): %s", e)
        yield LedgerRuntime(ledger, setup, cfg, rpc_url, keys)
    finally:
        if keys is not None:
            keys.close()
        if server is not None:
            await server.close()
        await ledger.close()
