"""The central service's one exception tree. Subsystems derive their own errors from ``CentralError`` (in their
own ``errors`` modules); adapters translate asyncpg, paho and RPC errors into these at the boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import gtxconfig.errors

T = TypeVar("T")


class CentralError(Exception):
    """Base of every error central raises on purpose."""


class ConfigError(CentralError, gtxconfig.errors.ConfigError):
    """Configuration is invalid; the message says which setting and why."""


class ServiceUnavailableError(CentralError):
    """A service this process does not have was used (e.g. the market without a ledger); HTTP answers 503."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Unavailable:
    """What the composition root puts in place of a service it could not build (decided once, at start-up)."""

    code: str
    reason: str


def require(service: T | Unavailable) -> T:
    """The service, or :class:`ServiceUnavailableError` when the composition root left it :class:`Unavailable`."""
    if isinstance(service, Unavailable):
        raise ServiceUnavailableError(service.code, service.reason)
    return service
