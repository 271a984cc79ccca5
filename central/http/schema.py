"""Request/response schemas from plain frozen dataclasses: one definition gives validation (JSON → dataclass),
serialisation (dataclass → JSON) and the JSON Schema used in the OpenAPI document.

Supported field types: ``str``, ``int``, ``bool``, ``float``, ``UUID``, ``datetime`` (ISO 8601 with offset),
``enum.Enum`` subclasses, ``Literal[...]``, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, ``T | None``,
nested dataclasses and ``Any``. Constraints go in field metadata via :func:`meta`::

    @dataclass(frozen=True)
    class Register:
        email: str = field(metadata=meta(max_length=254, format="email"))
        password: str = field(metadata=meta(min_length=10, max_length=200, write_only=True))
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import orjson

from central.errors import CentralError

T = TypeVar("T")
_MISSING = dataclasses.MISSING


class SchemaClashError(TypeError):
    """Two different dataclasses would be published under one component name in the OpenAPI document."""


class ValidationError(CentralError):
    """Input does not match its schema; ``path`` names the offending field (``body.meters[0].serial``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def meta(
    *,
    description: str = "",
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    format: str | None = None,
    example: Any = None,
    write_only: bool = False,
) -> dict[str, Any]:
    """Field metadata understood by this module (use as ``field(metadata=meta(...))``)."""
    optional = {
        "min_length": min_length,
        "max_length": max_length,
        "pattern": pattern,
        "minimum": minimum,
        "maximum": maximum,
        "format": format,
        "example": example,
    }
    m: dict[str, Any] = {"description": description, "write_only": write_only}
    m.update({k: v for k, v in optional.items() if v is not None})
    return {"gtx": m}


_HINTS: dict[type[Any], dict[str, Any]] = {}


def type_hints(cls: type[Any]) -> dict[str, Any]:
    """Resolved field types of a dataclass (cached)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


# --------------------------------------------------------------------------------------------------------------
# parsing


def load(cls: type[T], data: Any, path: str = "body") -> T:
    """Validate ``data`` (parsed JSON) against dataclass ``cls`` and build it."""
    return typing.cast(T, _load(cls, data, path, {}))


def _plain(value: Any) -> Any:
    """Bodies are parsed with ``Decimal`` for exact numbers; a value kept as-is (``Any``) gets plain floats back."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _load(tp: Any, value: Any, path: str, fmeta: Mapping[str, Any]) -> Any:  # noqa: PLR0911, PLR0912, PLR0915 - one branch per supported type
    optional, inner = _is_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ValidationError(path, "must not be null")
    tp = inner
    if tp is Any:
        return _plain(value)
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _load_dataclass(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp) or isinstance(value, bool) != any(isinstance(a, bool) for a in get_args(tp)):
            raise ValidationError(path, f"must be one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ValidationError(path, "must be an array")
        _check_len(value, path, fmeta, "items")
        item_tp = get_args(tp)[0]
        items = [_load(item_tp, v, f"{path}[{i}]", {}) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ValidationError(path, "must be an object")
        val_tp = get_args(tp)[1]
        for k in value:
            _check_text(k, path)
        return {str(k): _load(val_tp, v, f"{path}.{k}", {}) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ValidationError(path, f"must be one of {', '.join(repr(m.value) for m in tp)}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ValidationError(path, "must be a boolean")
        return value
    if tp is int:
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            value = int(value)  # JSON Schema counts 3.0 as an integer; parsed exactly, so no precision is lost
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError(path, "must be an integer")
        _check_range(value, path, fmeta)
        if not INT64_MIN <= value <= INT64_MAX:  # every integer ends up in a bigint column or a u64 on chain
            raise ValidationError(path, f"must be between {INT64_MIN} and {INT64_MAX}")
        return value
    if tp is float:
        if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
            raise ValidationError(path, "must be a number")
        number = float(value)
        if number in (float("inf"), float("-inf")):
            raise ValidationError(path, "must be a finite number")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ValidationError(path, "must be a string")
        _check_text(value, path)
        _check_len(value, path, fmeta, "characters")
        pattern = fmeta.get("pattern")
        if pattern is not None and not re.fullmatch(pattern, value, re.ASCII):
            raise ValidationError(path, f"must match {pattern}")
        if fmeta.get("format") == "email" and not EMAIL_RE.fullmatch(value):
            raise ValidationError(path, "must be an e-mail address")
        return value
    if tp is UUID:
        if not isinstance(value, str) or not UUID_RE.fullmatch(value):
            raise ValidationError(path, "must be a UUID string (8-4-4-4-12 hex digits)")
        return UUID(value)
    if tp is datetime:
        if not isinstance(value, str) or not DATE_TIME_RE.fullmatch(value):
            if isinstance(value, str) and _ANY_YEAR_DATE_TIME_RE.fullmatch(value):
                raise ValidationError(path, f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR} (UTC)")
            raise ValidationError(path, "must be an RFC 3339 date-time string with a UTC offset")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                path, "must be a real date and time (month 01-12, a day the month has, hour 00-23)"
            ) from None
        if dt.tzinfo is None:
            raise ValidationError(path, "must carry a UTC offset")
        # Within 1970..9000 UTC: every later conversion (to UTC, to Unix ms, plus an expiry of months) then works.
        try:
            utc_year = dt.astimezone(UTC).year
        except OverflowError:
            utc_year = 0
        if not EARLIEST_YEAR <= utc_year < LATEST_YEAR:
            raise ValidationError(path, f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR} (UTC)")
        return dt
    raise TypeError(f"unsupported schema type {tp!r} at {path}")


#: One mailbox, nothing an SMTP header would read as several addresses or a display name (no , ; : < > ( ) [ ]
#: quotes or backslash); Unicode letters are fine.
#: Spelled with explicit ranges (no ``\s``, which Python and ECMAScript read differently): controls, every Unicode
#: space and the header specials are out.
_EMAIL_PART = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff,;:<>()\[\]\"\\]+"
EMAIL_RE = re.compile(rf"{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}")
#: The one UUID spelling accepted (``UUID()`` alone would also take braces, ``urn:uuid:`` and no hyphens).
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: RFC 3339 date-time with an offset (``fromisoformat`` alone would also take week dates and basic format), in the
#: years accepted (the pattern the API document publishes).
_DATE_TIME = (r"-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
              r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")
DATE_TIME_RE = re.compile(r"(?:19[7-9][0-9]|[2-8][0-9]{3})" + _DATE_TIME)
#: The same in any year: told apart so that the error names the year.
_ANY_YEAR_DATE_TIME_RE = re.compile(r"[0-9]{4}" + _DATE_TIME)
_QUERY_INT = re.compile(r"-?[0-9]{1,19}")
#: Text without NUL characters (PostgreSQL cannot store them): the JSON Schema spelling of :func:`_check_text`.
NO_NUL_PATTERN = "^[^\\u0000]*$"
_NO_NUL = "Must not contain NUL characters or lone surrogates."
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000


def _check_text(value: str, path: str) -> None:
    """Text PostgreSQL can store: no NUL character, no lone UTF-16 surrogate (JSON allows both)."""
    if "\x00" in value:
        raise ValidationError(path, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(path, "must be valid Unicode text (no lone surrogates)") from None


def _check_len(value: Any, path: str, fmeta: Mapping[str, Any], unit: str) -> None:
    lo, hi = fmeta.get("min_length"), fmeta.get("max_length")
    if lo is not None and len(value) < lo:
        raise ValidationError(path, f"must have at least {lo} {unit}")
    if hi is not None and len(value) > hi:
        raise ValidationError(path, f"must have at most {hi} {unit}")


def _check_range(value: int, path: str, fmeta: Mapping[str, Any]) -> None:
    lo, hi = fmeta.get("minimum"), fmeta.get("maximum")
    if lo is not None and value < lo:
        raise ValidationError(path, f"must be >= {lo}")
    if hi is not None and value > hi:
        raise ValidationError(path, f"must be <= {hi}")


_KNOWN: dict[type[Any], dict[str, dataclasses.Field[Any]]] = {}


def _known_fields(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """A dataclass's fields by name (cached: ``dataclasses.fields`` rebuilds its tuple on every call)."""
    known = _KNOWN.get(cls)
    if known is None:
        known = _KNOWN[cls] = {f.name: f for f in dataclasses.fields(cls)}
    return known


def _load_dataclass(cls: type[Any], value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ValidationError(path, "must be an object")
    hints = type_hints(cls)
    known = _known_fields(cls)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValidationError(f"{path}.{unknown[0]}", "is not a known field")
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name not in value:
            if f.default is _MISSING and f.default_factory is _MISSING:
                raise ValidationError(f"{path}.{name}", "is required")
            continue
        kwargs[name] = _load(hints[name], value[name], f"{path}.{name}", f.metadata.get("gtx", {}))
    return cls(**kwargs)


_QUERY_PARAMS: dict[type[Any], dict[str, Any]] = {}


def _query_params(cls: type[Any]) -> dict[str, Any]:
    """Each query parameter's scalar type (``T`` of ``T | None``), by name (cached per class)."""
    params = _QUERY_PARAMS.get(cls)
    if params is None:
        hints = type_hints(cls)
        params = _QUERY_PARAMS[cls] = {name: _is_optional(hints[name])[1] for name in _known_fields(cls)}
    return params


def load_query(cls: type[T], query: Mapping[str, str]) -> T:
    """Build dataclass ``cls`` from URL query strings (scalars, optional scalars and enums only)."""
    data: dict[str, Any] = {}
    params = _query_params(typing.cast(type[Any], cls))
    for key in query:
        if key not in params:
            raise ValidationError(f"query.{key}", "is not a known parameter")
    for name, tp in params.items():
        if name not in query:
            continue
        raw = query[name]
        if tp is int:
            # Strict: ASCII digits with an optional minus, nothing ``int()`` would also forgive (" 1", "1_0", "+1",
            # other scripts' digits), so the document's ``type: integer`` and the server agree.
            if not _QUERY_INT.fullmatch(raw):
                raise ValidationError(f"query.{name}", "must be an integer")
            data[name] = int(raw)
        elif tp is bool:
            if raw not in ("true", "false"):
                raise ValidationError(f"query.{name}", "must be true or false")
            data[name] = raw == "true"
        else:
            data[name] = raw
    return typing.cast(T, _load_dataclass(typing.cast(type[Any], cls), data, "query"))


# --------------------------------------------------------------------------------------------------------------
# serialising


_FAST = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


#: Per class: its field names when it is a dataclass, else None (``dataclasses.is_dataclass`` costs more than the
#: rest of serialising a small object; a response of 10 readings made 26 such calls).
_DATACLASS: dict[type[Any], tuple[str, ...] | None] = {}


def _dataclass_fields(cls: type[Any]) -> tuple[str, ...] | None:
    try:
        return _DATACLASS[cls]
    except KeyError:
        names = _field_names(cls) if dataclasses.is_dataclass(cls) else None
        _DATACLASS[cls] = names
        return names


def dump(value: Any) -> Any:  # noqa: PLR0911 - one return per supported type
    """Dataclasses (and containers of them) → JSON-ready Python values."""
    cls = type(value)
    if cls in _FAST:
        return value
    if cls is list:
        return [v if type(v) in _FAST else dump(v) for v in value]
    names = _dataclass_fields(cls)
    if names is not None:
        out = {}
        for name in names:
            v = getattr(value, name)
            out[name] = v if type(v) in _FAST else dump(v)  # plain scalars skip the recursive call
        return out
    if isinstance(value, str | int | float | bool) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(value: Any) -> bytes:
    """A response body: ``json.dumps(dump(value))`` (compact), encoded by orjson, which serialises dataclasses,
    UUIDs, datetimes (ISO 8601, as ``datetime.isoformat``) and enums itself, ~10x faster than :func:`dump` and the
    json module (issue 12: the readings page spent ~20 % of its request there, measured with cProfile). What orjson
    refuses (an integer beyond 64 bits, a dict with keys that are not strings, a type :func:`dump` does not know
    either) takes the :func:`dump` path, which decides. orjson writes non-ASCII characters as UTF-8, not as
    ``\\u`` escapes: the same JSON text."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(dump(value), separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------------------------
# JSON Schema (OpenAPI 3.1 dialect = JSON Schema 2020-12)


class SchemaRegistry:
    """Collects named component schemas while building the OpenAPI document."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self._owners: dict[str, type[Any]] = {}

    def ref(self, cls: type[Any]) -> dict[str, Any]:
        """A reference to ``cls``'s component; two different classes under one name raise
        :class:`SchemaClashError` (a name must never silently document another schema)."""
        name = cls.__name__
        owner = self._owners.setdefault(name, cls)
        if owner is not cls:
            raise SchemaClashError(
                f"component name {name!r} names both {_qualname(owner)} and {_qualname(cls)}; rename one"
            )
        if name not in self.components:
            self.components[name] = {}  # reserve the name first, so recursive schemas terminate
            self.components[name] = self._object(cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def schema(self, tp: Any, fmeta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        fmeta = fmeta or {}
        optional, tp = _is_optional(tp)
        s = self._schema(tp, fmeta)
        if optional:
            s = {"anyOf": [s, {"type": "null"}]}
        if fmeta.get("description"):  # the field's own words first, then the type's rule (NUL ban, format)
            s["description"] = " ".join(x for x in (fmeta["description"], s.get("description", "")) if x)
        if fmeta.get("example"):
            s["examples"] = [fmeta["example"]]
        if fmeta.get("write_only"):
            s["writeOnly"] = True
        return s

    def _schema(self, tp: Any, fmeta: Mapping[str, Any]) -> dict[str, Any]:  # noqa: PLR0911, PLR0912 - per type
        if tp is Any:
            return {}
        origin = get_origin(tp)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.ref(tp)
        if origin is Literal:
            return {"enum": list(get_args(tp))}
        if origin in (list, tuple):
            s: dict[str, Any] = {"type": "array", "items": self.schema(get_args(tp)[0])}
            if "min_length" in fmeta:
                s["minItems"] = fmeta["min_length"]
            if "max_length" in fmeta:
                s["maxItems"] = fmeta["max_length"]
            return s
        if origin is dict:
            return {"type": "object", "additionalProperties": self.schema(get_args(tp)[1]),
                    "propertyNames": {"pattern": NO_NUL_PATTERN}}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"type": "string", "enum": [m.value for m in tp]}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:  # the loader's bounds: the field's own, always within int64
            return {"type": "integer", "minimum": max(fmeta.get("minimum", INT64_MIN), INT64_MIN),
                    "maximum": min(fmeta.get("maximum", INT64_MAX), INT64_MAX)}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            s = {"type": "string"}
            # ``format: email`` is not used: validators disagree on it; the loader's own rule is the pattern.
            for key, out in (("min_length", "minLength"), ("max_length", "maxLength")):
                if key in fmeta:
                    s[out] = fmeta[key]
            # The loader full-matches; JSON Schema patterns search, so anchor them. Without a pattern of its own
            # a string still may not hold NUL (``_check_text``); a field pattern must exclude NUL itself.
            if "pattern" in fmeta:
                s["pattern"] = anchored(fmeta["pattern"])
            elif fmeta.get("format") == "email":
                s["pattern"] = anchored(EMAIL_RE.pattern)
                s["description"] = "An e-mail address (one mailbox, no display name). " + _NO_NUL
            else:
                s["pattern"] = NO_NUL_PATTERN
            s.setdefault("description", _NO_NUL)
            return s
        if tp is UUID:
            return {"type": "string", "format": "uuid", "pattern": anchored(UUID_RE.pattern)}
        if tp is datetime:
            return {"type": "string", "format": "date-time", "pattern": anchored(DATE_TIME_RE.pattern),
                    "description": f"RFC 3339 with a UTC offset, between {EARLIEST_YEAR} and {LATEST_YEAR} (UTC)"}
        raise TypeError(f"unsupported schema type {tp!r}")

    def _object(self, cls: type[Any]) -> dict[str, Any]:
        hints = type_hints(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            props[f.name] = self.schema(hints[f.name], f.metadata.get("gtx", {}))
            if f.default is _MISSING and f.default_factory is _MISSING:
                required.append(f.name)
        s: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            s["required"] = required
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(f"{cls.__name__}("):
            s["description"] = doc
        return s


def anchored(pattern: str) -> str:
    """``pattern`` as JSON Schema must spell a full match (JSON Schema patterns search, the loader full-matches)."""
    return f"^(?:{pattern})$"


def _qualname(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
