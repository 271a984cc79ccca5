"""Frozen dataclasses built from TOML tables by their type hints: the one way either program reads its config.

Supported field types: ``bool``, ``int`` (a TOML boolean is not an integer), ``float`` (integers accepted),
``str``, ``Path`` (relative paths resolved against ``base`` when one is given), ``Literal[...]``, enums (by value),
``tuple[X, ...]`` and ``frozenset[X]`` (TOML arrays), nested dataclasses (tables; arrays of tables as
``tuple[Table, ...]``) and ``X | None`` (absent = ``None``). Constraints ride along as ``Annotated`` metadata:
``Annotated[int, Range(1, 3600)]``, ``Annotated[str, Match(r"[a-z]+", "lower-case letters")]``,
``Annotated[float, Check(lambda v: v > 0, "must be > 0")]``. Defaults are the dataclass defaults; a field without
one is required. Checks that span fields stay in ``__post_init__`` and raise :class:`Invalid` naming the key.

Unknown keys (with a "did you mean" suggestion), wrong types, out-of-range values and failed checks each raise ONE
line, ``file:line: key: reason``, as the document's error class.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from gtxconfig.document import Document, KeyPath
from gtxconfig.errors import ConfigError

T = TypeVar("T")

_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"), (dict, "table"),
)
_WANT = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path (string)"}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**63 else str(value)


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a number (either may be open)."""

    lo: float | None = None
    hi: float | None = None

    def problem(self, value: Any) -> str | None:
        if (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi):
            return None
        if self.lo is not None and self.hi is not None:
            return f"must be between {_number(self.lo)} and {_number(self.hi)}, got {value}"
        if self.lo is not None:
            return f"must be >= {_number(self.lo)}, got {value}"
        return f"must be <= {_number(self.hi or 0)}, got {value}"


@dataclass(frozen=True)
class Match:
    """A string matching ``pattern`` (whole string); ``description`` says what that means to a reader."""

    pattern: str
    description: str

    def problem(self, value: Any) -> str | None:
        return None if re.fullmatch(self.pattern, value) else f"must be {self.description}"


@dataclass(frozen=True)
class Check:
    """Any other single-value rule: ``reason`` when ``predicate`` is false."""

    predicate: Callable[[Any], bool]
    reason: str

    def problem(self, value: Any) -> str | None:
        return None if self.predicate(value) else self.reason


class Invalid(ConfigError):  # noqa: N818 - a signal from __post_init__, turned into the document's line
    """Raised by a dataclass's ``__post_init__`` for a rule spanning fields: names the key it reports on."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type (for "got ..." in messages; values themselves may be secrets)."""
    for py, name in _TOML_TYPES:
        if isinstance(value, py):
            return name
    return type(value).__name__


def reject_unknown(doc: Document, path: KeyPath, table: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise for the first key of ``table`` not in ``known``, suggesting the closest known key."""
    names = sorted(known)
    for key in table:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(names) or 'none'}"
            raise doc.error((*path, key), f"unknown key ({hint})")


@functools.cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


def build(cls: type[T], doc: Document, path: KeyPath = (), table: Any = None, *, base: Path | None = None) -> T:
    """Build ``cls`` (a dataclass) from the table at ``path`` of ``doc`` (or from ``table`` when given)."""
    if table is None:
        table = doc.data
        for part in path:
            table = table.get(part, {}) if isinstance(table, Mapping) and isinstance(part, str) else table[part]
    if not isinstance(table, Mapping):
        raise doc.error(path, f"must be a table, got {toml_type(table)}")
    hints = _hints(cast(Any, cls))
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    reject_unknown(doc, path, table, fields)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in table:
            kwargs[name] = _value(hints[name], table[name], doc, (*path, name), base)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise doc.error((*path, name), "is required")
    try:
        return cls(**kwargs)
    except Invalid as exc:
        raise doc.error((*path, exc.key), exc.reason) from None
    except ConfigError as exc:
        if isinstance(exc, doc.error_type) and str(exc).startswith(f"{doc.source}"):
            raise
        raise doc.error(path, str(exc)) from None


def build_table(
    cls: type[T], data: Mapping[str, Any], *, name: str, source: str = "<settings>",
    error_type: type[ConfigError] = ConfigError,
) -> T:
    """Build ``cls`` from a plain mapping (tests, tools): errors name ``source`` and ``name.key``."""
    return build(cls, Document.from_mapping(source, {name: data}, error_type), (name,))


def _value(tp: Any, value: Any, doc: Document, path: KeyPath, base: Path | None) -> Any:  # noqa: PLR0911, PLR0912
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *rules = get_args(tp)
        result = _value(inner, value, doc, path, base)
        for rule in rules:
            if isinstance(rule, Range | Match | Check) and (reason := rule.problem(result)) is not None:
                raise doc.error(path, reason)
        return result
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"gtxconfig reads X | None, not {tp!r}")
        if value == "" and args[0] is Path:
            return None
        return _value(args[0], value, doc, path, base)
    if origin is Literal:
        choices = get_args(tp)
        if isinstance(value, bool) or value not in choices:
            return _fail(doc, path, f"must be one of {', '.join(map(repr, choices))}", value)
        return value
    if origin in (tuple, frozenset):
        elems = get_args(tp)
        if origin is tuple and not (len(elems) == 2 and elems[1] is Ellipsis):
            raise TypeError(f"gtxconfig reads tuple[X, ...], not {tp!r}")
        if not isinstance(value, list):
            return _fail(doc, path, "must be an array", value, typed=True)
        return origin(_value(elems[0], item, doc, (*path, i), base) for i, item in enumerate(value))
    if not isinstance(tp, type):
        raise TypeError(f"gtxconfig cannot read {tp!r}")
    if dataclasses.is_dataclass(tp):
        return build(tp, doc, path, value, base=base)
    if issubclass(tp, enum.Enum):
        members = [m.value for m in tp]
        if isinstance(value, bool) or value not in members:
            return _fail(doc, path, f"must be one of {', '.join(map(repr, members))}", value)
        return tp(value)
    return _scalar(tp, value, doc, path, base)


def _scalar(tp: type, value: Any, doc: Document, path: KeyPath, base: Path | None) -> Any:
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif tp in (str, Path):
        ok = isinstance(value, str)
    else:
        raise TypeError(f"gtxconfig cannot read {tp!r}")
    if not ok:
        return _fail(doc, path, f"must be {_WANT[tp]}", value, typed=True)
    if tp is Path:
        if not value:
            raise doc.error(path, "must be a non-empty path")
        p = Path(value)
        return p if base is None or p.is_absolute() else base / p
    return value


def _fail(doc: Document, path: KeyPath, reason: str, value: Any, *, typed: bool = False) -> Any:
    """Raise ``reason`` with what was given: its TOML type, or (for choices) a short quote of a plain value."""
    if typed or not isinstance(value, str | int | float) or isinstance(value, bool):
        raise doc.error(path, f"{reason}, got {toml_type(value)}")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise doc.error(path, f"{reason}, got {shown}")
