"""The port identity uses to change who may use the broker (adapters: ``central.broker.dynsec`` over MQTT,
``central.broker.memory`` for unit tests)."""

from __future__ import annotations

from typing import Protocol


class BrokerAccess(Protocol):
    async def grant(self, device_id: str, password: str, *, replace: bool = True) -> None:
        """Let the gateway log in (user name = its device id) with ``password`` and use its own topics. A gateway
        that already had access keeps it unless ``replace``: then its client is made anew with this password (and
        whoever is connected with the old one is disconnected). Raises ``BrokerError``."""
        ...

    async def revoke(self, device_id: str) -> None:
        """Remove the gateway's access and disconnect it; nothing to do when it had none. Raises ``BrokerError``."""
        ...
