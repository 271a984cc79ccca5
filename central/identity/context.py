"""The identity services as one app-scoped object (built once the pool exists)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from central.identity.accounts import Accounts
from central.identity.devices import Devices
from central.identity.meters import Meters


@dataclass(frozen=True)
class Identity:
    accounts: Accounts
    devices: Devices
    meters: Meters


IDENTITY = web.AppKey("gtx.identity", Identity)
