"""What a final (meter, window) with exported energy produces for minting: one chain-outbox intent.

Accounting enqueues it (``central.accounting.pg_store.enqueue_mints``) in the same database transaction that
records the window, so a window is minted at most once and never forgotten; ``central.minting`` plans, submits and
proves the mints. The record lives here, below minting, so that accounting does not import minting (the import
layers in ``pyproject.toml``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from central.accounting.mint_memo import MintLeaf

#: chain outbox kind of energy mints; intent key ``"<meter uuid>:<window start ms>"``
MINT_KIND = "energy-mint"


@dataclass(frozen=True, slots=True)
class MintIntent:
    """The payload of one (meter, window) mint intent, plus its outbox id."""

    id: int
    meter_id: uuid.UUID
    owner_id: uuid.UUID
    window_start_ms: int
    window_end_ms: int
    amount_wh: int
    window_root: bytes

    @property
    def key(self) -> str:
        return intent_key(self.meter_id, self.window_start_ms)

    @property
    def leaf(self) -> MintLeaf:
        return MintLeaf(self.meter_id, self.window_start_ms, self.window_end_ms, self.amount_wh, self.window_root)

    def payload(self) -> dict[str, Any]:
        return {
            "meter": str(self.meter_id),
            "owner": str(self.owner_id),
            "start": self.window_start_ms,
            "end": self.window_end_ms,
            "wh": self.amount_wh,
            "root": self.window_root.hex(),
        }

    @classmethod
    def from_payload(cls, intent_id: int, p: Mapping[str, Any]) -> MintIntent:
        return cls(
            intent_id,
            uuid.UUID(p["meter"]),
            uuid.UUID(p["owner"]),
            int(p["start"]),
            int(p["end"]),
            int(p["wh"]),
            bytes.fromhex(p["root"]),
        )


def intent_key(meter_id: uuid.UUID, window_start_ms: int) -> str:
    return f"{meter_id}:{window_start_ms}"


def parse_intent_key(key: str) -> tuple[uuid.UUID, int] | None:
    """(meter id, window start) from a mint intent key (the inverse of :func:`intent_key`); None if malformed."""
    meter, _, start = key.partition(":")
    try:
        return uuid.UUID(meter), int(start)
    except ValueError:
        return None
