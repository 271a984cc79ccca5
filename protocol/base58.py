"""Base58 with the Bitcoin alphabet (the form of Solana addresses and GridTokenX device ids)."""

from __future__ import annotations

from protocol.errors import MalformedError

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Encode bytes; each leading zero byte becomes a leading ``1``."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Decode base58 text; raises ``MalformedError`` on any character outside the alphabet."""
    if not isinstance(text, str):
        raise MalformedError("base58 input must be text")
    n = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            raise MalformedError(f"invalid base58 character {ch!r}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body
