"""Printing for the demo: stage headers, short aligned lines, and the list of gaps (APIs missing or broken)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

T0 = time.monotonic()


def elapsed() -> str:
    return f"{time.monotonic() - T0:6.1f}s"


def stage(number: int, title: str) -> None:
    print(f"\n== {number}. {title}  [{elapsed().strip()}]", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


def kwh(wh: int) -> str:
    """Wh as kWh with 3 decimals (the energy token's own precision), from ints only."""
    sign = "-" if wh < 0 else ""
    wh = abs(wh)
    return f"{sign}{wh // 1000}.{wh % 1000:03d} kWh"


def quote(units: int) -> str:
    """Quote base units (6 decimals) as tokens."""
    return f"{units // 1_000_000}.{units % 1_000_000:06d} QUOTE"


def short(sig: str | None, n: int = 16) -> str:
    if not sig:
        return "-"
    return sig if len(sig) <= n + 3 else sig[:n] + "…"


@dataclass
class Gaps:
    """What could not be shown, with the exact error, printed at the end and reported by the exit code."""

    items: list[str] = field(default_factory=list)
    #: workarounds: the story was still shown for real, but not quite the way it should be (reported, exit 0)
    notes: list[str] = field(default_factory=list)

    def note(self, what: str, detail: object) -> None:
        text = f"{what}: {detail}"
        self.notes.append(text)
        print(f"   !! NOTE — {text}", flush=True)

    def add(self, what: str, error: object) -> None:
        text = f"{what}: {error}"
        self.items.append(text)
        print(f"   !! NOT SHOWN — {text}", file=sys.stdout, flush=True)
