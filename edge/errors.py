"""The edge daemon's one exception tree. Adapters translate library errors (pymodbus, paho, sqlite3, serial)
into these at the boundary."""

import gtxconfig.errors


class EdgeError(Exception):
    """Base of every error the edge raises on purpose."""


class ConfigError(EdgeError, gtxconfig.errors.ConfigError):
    """Configuration or data file is invalid; the message names the file, line and reason."""


class MeterError(EdgeError):
    """A meter did not answer or answered nonsense. Never turned into a made-up reading."""
