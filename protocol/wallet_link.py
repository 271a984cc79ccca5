"""Wallet link message (protocol §6 Wallet link message): signed by the user's Solana wallet (Ed25519) to bind it to an
account.

UTF-8, ``\\n`` line ends, no trailing newline::

    GridTokenX wallet link
    user: <user uuid>
    wallet: <base58 wallet address>
    nonce: <32 hex>
    expires: <RFC 3339 UTC, seconds precision, Z suffix>
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from protocol.errors import MalformedError
from protocol.keys import public_key_from_device_id, verify_signature

TITLE = "GridTokenX wallet link"
NONCE_SIZE = 16
_PATTERN = re.compile(
    r"GridTokenX wallet link\n"
    r"user: (?P<user>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\n"
    r"wallet: (?P<wallet>[1-9A-HJ-NP-Za-km-z]{32,44})\n"
    r"nonce: (?P<nonce>[0-9a-f]{32})\n"
    r"expires: (?P<expires>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)",
)


@dataclass(frozen=True, slots=True)
class WalletLink:
    user_id: uuid.UUID
    wallet: str
    nonce: bytes
    expires: datetime

    def __post_init__(self) -> None:
        public_key_from_device_id(self.wallet)
        if len(self.nonce) != NONCE_SIZE:
            raise MalformedError(f"wallet-link nonce must be {NONCE_SIZE} bytes")
        if self.expires.tzinfo is None or self.expires.utcoffset() != UTC.utcoffset(None):
            raise MalformedError("expires must be a UTC datetime")
        if self.expires.microsecond:
            raise MalformedError("expires has seconds precision")

    def message(self) -> str:
        return (
            f"{TITLE}\n"
            f"user: {self.user_id}\n"
            f"wallet: {self.wallet}\n"
            f"nonce: {self.nonce.hex()}\n"
            f"expires: {self.expires.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )

    def message_bytes(self) -> bytes:
        return self.message().encode("utf-8")

    @classmethod
    def parse(cls, text: str) -> Self:
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise MalformedError("not a GridTokenX wallet-link message")
        try:
            expires = datetime.strptime(match["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError as exc:
            raise MalformedError("expires is not a valid date") from exc
        return cls(uuid.UUID(match["user"]), match["wallet"], bytes.fromhex(match["nonce"]), expires)


def verify_wallet_link(link: WalletLink, signature: bytes) -> None:
    """Raise ``BadSignatureError`` unless the wallet's key signed exactly this message."""
    verify_signature(public_key_from_device_id(link.wallet), link.message_bytes(), signature)
