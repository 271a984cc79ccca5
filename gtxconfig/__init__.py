"""One configuration mechanism for both programs (docs/decisions/0012-config-loader.md).

A pure, shared package (it imports neither ``edge`` nor ``central``): :mod:`gtxconfig.document` parses TOML and
knows the line of every key, :mod:`gtxconfig.schema` builds frozen dataclasses from their type hints, and
:mod:`gtxconfig.secretfile` holds the one rule for files that hold a secret. Every error is one line,
``file:line: key: reason``, raised as (a program's subclass of) :class:`ConfigError`.
"""

from gtxconfig.document import Document, KeyLines, KeyPath
from gtxconfig.errors import ConfigError
from gtxconfig.schema import Check, Invalid, Match, Range, build, build_table, reject_unknown

__all__ = [
    "Check",
    "ConfigError",
    "Document",
    "Invalid",
    "KeyLines",
    "KeyPath",
    "Match",
    "Range",
    "build",
    "build_table",
    "reject_unknown",
]
