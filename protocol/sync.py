"""Chain resync (protocol §5 Chain resync), after the edge lost its local state but kept its key.

Device → central ``{"v":1,"nonce":"<64 hex>"}``; central → device
``{"v":1,"nonce":"…","last_seq":<n>,"last_hash":"<64 hex>"}`` (0 and 64 zeros when central has nothing).
The device continues at ``last_seq + 1`` with ``prev_hash = last_hash``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from protocol._json import check_size, dump, get_hex, get_int, load_object
from protocol.record import HASH_SIZE

NONCE_SIZE = 32
_U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class SyncRequest:
    nonce: bytes

    def __post_init__(self) -> None:
        check_size("nonce", self.nonce, NONCE_SIZE)

    def to_json(self) -> bytes:
        return dump({"nonce": self.nonce.hex()})

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        return cls(get_hex(load_object(data, frozenset({"nonce"})), "nonce", NONCE_SIZE))


@dataclass(frozen=True, slots=True)
class SyncReply:
    nonce: bytes
    last_seq: int
    last_hash: bytes

    def __post_init__(self) -> None:
        check_size("nonce", self.nonce, NONCE_SIZE)
        check_size("last_hash", self.last_hash, HASH_SIZE)

    def to_json(self) -> bytes:
        return dump({"nonce": self.nonce.hex(), "last_seq": self.last_seq, "last_hash": self.last_hash.hex()})

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        obj = load_object(data, frozenset({"nonce", "last_seq", "last_hash"}))
        return cls(
            get_hex(obj, "nonce", NONCE_SIZE),
            get_int(obj, "last_seq", 0, _U64_MAX),
            get_hex(obj, "last_hash", HASH_SIZE),
        )
