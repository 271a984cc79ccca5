"""Ack (protocol §4 Ack): central → device, one per batch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from protocol._json import dump, get_int, load_object
from protocol.errors import MalformedError, Reason

_U64_MAX = 2**64 - 1
#: What a rejection reason looks like on the wire. A reason of this shape that this version does not know (a newer
#: central's) is kept as its text: the ack still tells which records were stored, and the device keeps the rejected
#: ones aside instead of resending the whole batch forever.
_REASON = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")


def _reason(text: object) -> Reason | str:
    if isinstance(text, str):
        try:
            return Reason(text)
        except ValueError:
            if _REASON.match(text):
                return text
    raise MalformedError(f"rejection reason must be 1..40 of a-z 0-9 _ starting with a letter, got {text!r}"[:160])


@dataclass(frozen=True, slots=True)
class Ack:
    """``{"v":1,"first":s,"last":s,"accepted":n,"duplicate":n,"rejected":[[seq,"reason"],...]}``.

    ``first``/``last`` are the seq range the batch covered; every seq in it not listed in ``rejected`` is stored
    at central (accepted now or a duplicate of an earlier delivery) and may be deleted by the device.
    """

    first: int
    last: int
    accepted: int
    duplicate: int
    #: (seq, reason): a ``Reason``, or the text of one this version does not know (see ``_REASON``)
    rejected: tuple[tuple[int, Reason | str], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise MalformedError("ack range must satisfy 0 <= first <= last")
        if self.accepted < 0 or self.duplicate < 0:
            raise MalformedError("ack counts must not be negative")

    def to_json(self) -> bytes:
        return dump(
            {
                "first": self.first,
                "last": self.last,
                "accepted": self.accepted,
                "duplicate": self.duplicate,
                "rejected": [[seq, str(reason)] for seq, reason in self.rejected],
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        obj = load_object(data, frozenset({"first", "last", "accepted", "duplicate", "rejected"}))
        raw = obj["rejected"]
        if not isinstance(raw, list):
            raise MalformedError("rejected must be a list")
        rejected: list[tuple[int, Reason | str]] = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 2):
                raise MalformedError("each rejected entry is [seq, reason]")
            seq, reason = item
            if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= _U64_MAX:
                raise MalformedError("rejected seq must be an integer")
            rejected.append((seq, _reason(reason)))
        return cls(
            first=get_int(obj, "first", 0, _U64_MAX),
            last=get_int(obj, "last", 0, _U64_MAX),
            accepted=get_int(obj, "accepted", 0, _U64_MAX),
            duplicate=get_int(obj, "duplicate", 0, _U64_MAX),
            rejected=tuple(rejected),
        )
