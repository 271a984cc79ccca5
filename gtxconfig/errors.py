"""The root of configuration errors. Each program derives its own ``ConfigError`` from it (and from its own
exception tree) and hands that class to :class:`gtxconfig.Document`, so callers catch one type per program."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration file or setting is invalid; the message is one line: ``file:line: key: reason``."""
