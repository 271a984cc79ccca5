"""Wallets: link a wallet, read balances, the dev quote faucet."""

from __future__ import annotations

from central.wallets import routes
from central.wiring import Subsystem

SUBSYSTEM = Subsystem("wallets", routes=(routes.routes,))
