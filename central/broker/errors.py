"""The broker subsystem's errors (all ``CentralError``)."""

from __future__ import annotations

from central.errors import CentralError


class BrokerError(CentralError):
    """A broker access change failed: no answer in time, or the broker refused the command."""


class BrokerTimeoutError(BrokerError):
    """The broker did not answer a dynamic-security command in time (central not connected, plugin not loaded)."""


class BrokerRefusedError(BrokerError):
    """The dynamic-security plugin answered a command with an error."""

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"broker refused {command}: {error}")
        self.command = command
        self.error = error
