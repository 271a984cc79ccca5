"""``GET /api/v1/ledger`` (public): backend, JSON-RPC URL, mints and decimals, treasury, current slot."""

from __future__ import annotations

from dataclasses import dataclass

from central.errors import require
from central.http import PUBLIC, Call, RouteTable
from central.http.errors import ErrorMap, ErrorRule
from central.ledger.errors import LedgerError

#: A ledger that cannot be reached answers 503 (the client may retry).
ERRORS: ErrorMap = {LedgerError: ErrorRule(503, "ledger_unavailable")}
routes = RouteTable(tag="ledger", error_map=ERRORS)


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
    runtime = require(call.services.ledger)
    slot = await runtime.ledger.get_slot()
    setup = runtime.setup
    return LedgerInfo(
        backend=runtime.config.backend, rpc_url=runtime.rpc_url, slot=slot, initialised=setup is not None,
        energy_mint=str(setup.energy_mint) if setup else None,
        energy_decimals=setup.energy_decimals if setup else None,
        quote_mint=str(setup.quote_mint) if setup else None,
        quote_decimals=setup.quote_decimals if setup else None,
        treasury=str(setup.treasury.pubkey) if setup else None)
