"""The central service's one exception tree. Subsystems derive their own errors from ``CentralError`` (in their
own ``errors`` modules); adapters translate asyncpg, paho and RPC errors into these at the boundary."""

import gtxconfig.errors


class CentralError(Exception):
    """Base of every error central raises on purpose."""


class ConfigError(CentralError, gtxconfig.errors.ConfigError):
    """Configuration is invalid; the message says which setting and why."""
