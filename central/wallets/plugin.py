"""Plugs the wallet routes into the central app."""

from __future__ import annotations

from central.app import Registry
from central.wallets.routes import routes


def install(registry: Registry) -> None:
    registry.add_routes(routes)
