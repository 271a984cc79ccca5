"""The identity services as one object (built by ``central.bootstrap``, reached as ``call.services.identity``): the
pure services (``users``, ``gateways``, ``claims``), each bound there to its PostgreSQL store
(``central.identity.postgres``) and, for gateways, to the MQTT publisher and central's signing key."""

from __future__ import annotations

from dataclasses import dataclass

from central.identity.claims import MeterService
from central.identity.gateways import DeviceService
from central.identity.users import AccountService


@dataclass(frozen=True)
class Identity:
    accounts: AccountService
    devices: DeviceService
    meters: MeterService
