"""Strict helpers for the protocol's small JSON messages (internal)."""

from __future__ import annotations

import json
from typing import Any

from protocol.errors import MalformedError


def load_object(data: bytes | str, keys: frozenset[str]) -> dict[str, Any]:
    """Parse a JSON object with ``"v": 1`` and exactly ``keys`` (plus ``v``)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError("not valid JSON") from exc
    if not isinstance(obj, dict):
        raise MalformedError("expected a JSON object")
    if obj.get("v") != 1 or isinstance(obj.get("v"), bool):
        raise MalformedError("unsupported or missing message version")
    missing = keys - obj.keys()
    if missing:
        raise MalformedError(f"missing field(s): {', '.join(sorted(missing))}")
    extra = obj.keys() - keys - {"v"}
    if extra:
        raise MalformedError(f"unknown field(s): {', '.join(sorted(extra))}")
    return obj


def dump(obj: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, **obj}, separators=(",", ":")).encode()


def get_int(obj: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise MalformedError(f"{key} must be an integer in {lo}..{hi}")
    return value


def get_hex(obj: dict[str, Any], key: str, size: int) -> bytes:
    value = obj[key]
    if not isinstance(value, str) or len(value) != 2 * size:
        raise MalformedError(f"{key} must be {2 * size} hex digits")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise MalformedError(f"{key} must be {2 * size} hex digits") from exc
    if raw.hex() != value.lower():
        raise MalformedError(f"{key} must be {2 * size} hex digits")
    return raw


def check_size(name: str, value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise MalformedError(f"{name} must be {size} bytes")
    return bytes(value)
