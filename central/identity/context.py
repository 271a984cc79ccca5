"""The identity services as one object (built by ``central.bootstrap``, reached as ``call.services.identity``)."""

from __future__ import annotations

from dataclasses import dataclass

from central.identity.accounts import Accounts
from central.identity.devices import Devices
from central.identity.meters import Meters


@dataclass(frozen=True)
class Identity:
    accounts: Accounts
    devices: Devices
    meters: Meters

