"""Hourly consumption matching: the pure part (memo, statement, certificate-style claim).

A consumer redeems energy tokens (1 base unit = 1 Wh) against their own meter's metered import in one UTC hour: the
wallet burns them (SPL Token ``BurnChecked``) in one transaction with a memo ``memo_text`` naming the redemption,
the meter and the hour. Why the wallet and not the platform from escrow: after settlement the bought tokens sit in
the buyer's wallet, the platform holds no authority over them, and the claim is the holder's own act on chain (the
burn is signed by the wallet that held the energy; the platform only pays the fee, through ``central.ledger.cosign``).

The statement per hour is ``(meter, hour, import_wh, matched_wh)`` where ``import_wh`` is the sum of the meter's
accounting windows in the hour (signed readings, Merkle roots) and ``matched_wh`` the confirmed burns; the month's
share is ``matched / import`` in basis points (integer, floor). The claim is that statement, canonical JSON, signed
by central's Ed25519 key; anyone verifies it with the public key (``verify_claim``), and each hour's burns with the
chain (signatures listed).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from protocol.keys import verify_signature

MEMO_PREFIX = "GTX-MATCH-V1"
CLAIM_FORMAT = "GTX-MATCHING-CLAIM-V1"
HOUR = timedelta(hours=1)


def memo_text(redemption: UUID, serial: str, hour: datetime, wh: int) -> str:
    """The burn's memo: what it redeems, verifiable by anyone reading the chain."""
    return f"{MEMO_PREFIX} id={redemption} meter={serial} hour={hour.astimezone(UTC).isoformat()} wh={wh}"


def parse_memo(text: str) -> dict[str, str] | None:
    parts = text.split(" ")
    if not parts or parts[0] != MEMO_PREFIX:
        return None
    fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    return fields if set(fields) == {"id", "meter", "hour", "wh"} else None


def hour_of(t: datetime) -> datetime:
    """The UTC hour ``t`` names; raises ``ValueError`` unless it is an hour boundary."""
    t = t.astimezone(UTC)
    if t != t.replace(minute=0, second=0, microsecond=0):
        raise ValueError("hour must be a whole UTC hour")
    return t


def month_range(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` → [first instant, first instant of the next month) in UTC; ``ValueError`` if malformed."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def share_bp(matched: int, total: int) -> int:
    return matched * 10_000 // total if total else 0


@dataclass(frozen=True, slots=True)
class HourRow:
    meter: str
    hour: datetime
    import_wh: int
    matched_wh: int
    share_bp: int
    #: the confirmed burns' transaction signatures (verify them on chain)
    signatures: list[str]


@dataclass(frozen=True, slots=True)
class Statement:
    user_id: UUID
    month: str
    import_wh: int  # metered import over the month (all hours of the user's meters)
    matched_wh: int
    share_bp: int
    hours: list[HourRow]


def statement(user_id: UUID, month: str, hours: Sequence[HourRow]) -> Statement:
    total = sum(h.import_wh for h in hours)
    matched = sum(h.matched_wh for h in hours)
    return Statement(user_id, month, total, matched, share_bp(matched, total), list(hours))


#: What a spreadsheet takes for the start of a formula when a cell begins with it.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """``value`` as a CSV cell that a spreadsheet shows as text: one starting like a formula gets a leading ``'``.
    Meter serials are chosen by whoever registers the meter (any printable ASCII): ``=HYPERLINK(...)`` would run as a
    formula in the household's spreadsheet."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(s: Statement) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["meter", "hour", "import_wh", "matched_wh", "share_bp", "signatures"])
    for h in s.hours:
        w.writerow(
            [csv_text(h.meter), h.hour.isoformat(), h.import_wh, h.matched_wh, h.share_bp, " ".join(h.signatures)]
        )
    w.writerow(["total", s.month, s.import_wh, s.matched_wh, s.share_bp, ""])
    return out.getvalue()


def claim_body(s: Statement, issued_at: datetime) -> dict[str, Any]:
    """The claim's content (what is signed): the statement, its format and issue time."""
    d = asdict(s)
    d["user_id"] = str(s.user_id)
    d["hours"] = [{**asdict(h), "hour": h.hour.isoformat()} for h in s.hours]
    return {"format": CLAIM_FORMAT, "issued_at": issued_at.astimezone(UTC).isoformat(), "statement": d}


def canonical(body: dict[str, Any]) -> bytes:
    """The exact bytes signed: JSON, keys sorted, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_claim(public_key: bytes, body: dict[str, Any], signature: bytes) -> bool:
    """True when ``signature`` is central's signature of ``body`` and the body's totals add up."""
    try:
        verify_signature(public_key, canonical(body), signature)
    except Exception:  # noqa: BLE001 - any failure to verify is "not valid"
        return False
    st = body.get("statement", {})
    hours = st.get("hours", [])
    return (
        body.get("format") == CLAIM_FORMAT
        and sum(h["import_wh"] for h in hours) == st.get("import_wh")
        and sum(h["matched_wh"] for h in hours) == st.get("matched_wh")
        and all(0 <= h["matched_wh"] <= h["import_wh"] for h in hours)
    )
