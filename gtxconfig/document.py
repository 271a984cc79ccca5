"""A parsed TOML document that can say on which line a key sits, so every error names file, line, key and reason.

``tomllib`` reports the line of syntax errors but keeps no positions; :class:`KeyLines` recovers them with a small
line scanner that follows ``[table]`` / ``[[array.of.tables]]`` headers and ``key = value`` lines (dotted keys
and inline tables resolve to the line of their outermost key). It is only used to point at errors; the values
always come from ``tomllib``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gtxconfig.errors import ConfigError

KeyPath = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


class KeyLines:
    """Maps key paths (``("measurements", "energy_import", "type")``, ``("probe", 0, "address")``) to line numbers."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        counters: dict[tuple[str, ...], int] = {}
        current: KeyPath = ()
        in_multiline: str | None = None
        for lineno, line in enumerate(text.splitlines(), start=1):
            if in_multiline is not None:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                names = tuple(_split_dotted(header.group(2)))
                if header.group(1) == "[[":
                    index = counters.get(names, -1) + 1
                    counters[names] = index
                    # Sub-tables of a table array refer to its latest element.
                    current = (*self._resolve(names[:-1], counters), names[-1], index)
                else:
                    current = self._resolve(names, counters)
                self._lines.setdefault(current, lineno)
                continue
            key = _KEY.match(line)
            if key:
                path = (*current, *_split_dotted(key.group(1)))
                self._lines.setdefault(path, lineno)
                rest = line[key.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_multiline = quote

    @staticmethod
    def _resolve(names: tuple[str, ...], counters: Mapping[tuple[str, ...], int]) -> KeyPath:
        path: list[str | int] = []
        for i, name in enumerate(names):
            path.append(name)
            index = counters.get(names[: i + 1])
            if index is not None:
                path.append(index)
        return tuple(path)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Line of the longest prefix of ``path`` that was seen, or None."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            # An implicit table (only defined through [a.b] headers): its first appearance.
            inside = [line for k, line in self._lines.items() if k[: len(key)] == key]
            if inside:
                return min(inside)
            key = key[:-1]
        return None


@dataclass(frozen=True)
class Document:
    """A TOML document: its name (for messages), parsed data, line lookup and the error class to raise."""

    source: str
    data: Mapping[str, Any]
    lines: KeyLines = field(repr=False)
    error_type: type[ConfigError] = field(default=ConfigError, repr=False)
    #: keys set outside the file (``--set section.key=value``): their errors say so instead of naming a line
    overridden: frozenset[KeyPath] = frozenset()

    @classmethod
    def from_text(cls, source: str, text: str, error_type: type[ConfigError] = ConfigError) -> Document:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib's message already ends with "(at line N, column M)".
            raise error_type(f"{source}: not valid TOML: {exc}") from None
        return cls(source=source, data=data, lines=KeyLines(text), error_type=error_type)

    @classmethod
    def load(cls, path: str | Path, error_type: type[ConfigError] = ConfigError) -> Document:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise error_type(f"{p}: cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise error_type(f"{p}: cannot be read: {exc}") from None
        return cls.from_text(str(p), text, error_type)

    @classmethod
    def from_mapping(
        cls, source: str, data: Mapping[str, Any], error_type: type[ConfigError] = ConfigError
    ) -> Document:
        """A document without a file (defaults, tests): errors name ``source`` and the key, without a line."""
        return cls(source=source, data=data, lines=KeyLines(""), error_type=error_type)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        return self.lines.line_of(path)

    def error(self, path: Sequence[str | int], reason: str) -> ConfigError:
        """One line naming file, line (when known), the key path and the reason."""
        dotted = dotted_key(path)
        if any(tuple(path[: len(o)]) == o for o in self.overridden):
            return self.error_type(f"--set {dotted}: {reason}")
        line = self.lines.line_of(path)
        where = f"{self.source}:{line}" if line is not None else self.source
        return self.error_type(f"{where}: {dotted}: {reason}" if dotted else f"{where}: {reason}")


def dotted_key(path: Sequence[str | int]) -> str:
    """``("meter", 0, "bus")`` -> ``meter[0].bus``."""
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
