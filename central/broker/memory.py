"""In-memory fake of :class:`~central.broker.port.BrokerAccess` for unit tests."""

from __future__ import annotations

from central.broker.errors import BrokerTimeoutError


class InMemoryBrokerAccess:
    def __init__(self) -> None:
        #: device id → password of every gateway with access.
        self.clients: dict[str, str] = {}
        #: Devices whose access was revoked, in order.
        self.revoked: list[str] = []
        #: While True every change fails as if the broker did not answer.
        self.down = False

    async def grant(self, device_id: str, password: str, *, replace: bool = True) -> None:
        if self.down:
            raise BrokerTimeoutError("the broker did not answer")
        if replace or device_id not in self.clients:
            self.clients[device_id] = password

    async def revoke(self, device_id: str) -> None:
        if self.down:
            raise BrokerTimeoutError("the broker did not answer")
        self.clients.pop(device_id, None)
        self.revoked.append(device_id)
