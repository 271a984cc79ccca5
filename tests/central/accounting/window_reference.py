"""Helpers for the window-energy tests: readings, an independent Fraction reference for the windows, and a Hypothesis
strategy for meter reading streams."""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

from hypothesis import strategies as st

from central.accounting import DEFAULT_WINDOW_MS, METER_REPLACED, MeterReading, window_start

W = DEFAULT_WINDOW_MS


def rd(seq: int, ts: int, exp: int, imp: int = 0, flags: int = 0) -> MeterReading:
    digest = hashlib.sha256(f"{seq}/{ts}/{imp}/{exp}/{flags}".encode()).digest()
    return MeterReading(timestamp_ms=ts, seq=seq, import_wh=imp, export_wh=exp, flags=flags, record_hash=digest)


def reference_windows(readings: list[MeterReading], window_ms: int) -> list[tuple[int, int, int]]:
    """(window start, import Wh, export Wh) computed independently: Fractions, then floor."""
    rs = sorted({r.record_hash: r for r in readings}.values(), key=lambda r: r.key)
    cum: list[tuple[int, int, int]] = []  # (ts, C import, C export)
    for i, r in enumerate(rs):
        if i == 0:
            cum.append((r.timestamp_ms, r.import_wh, r.export_wh))
            continue
        p, (_, pi, pe) = rs[i - 1], cum[-1]
        rep = r.flags & METER_REPLACED
        ci = pi + (0 if rep or r.import_wh < p.import_wh else r.import_wh - p.import_wh)
        ce = pe + (0 if rep or r.export_wh < p.export_wh else r.export_wh - p.export_wh)
        cum.append((r.timestamp_ms, ci, ce))

    def value(b: int, ch: int) -> int:
        if b <= cum[0][0]:
            return cum[0][ch]
        below = [c for c in cum if c[0] <= b]
        above = [c for c in cum if c[0] >= b]
        a, c = below[-1], above[0]
        if a[0] == b:
            return a[ch]
        return math.floor(Fraction(a[ch]) + Fraction(c[ch] - a[ch]) * Fraction(b - a[0], c[0] - a[0]))

    out = []
    b = window_start(cum[0][0], window_ms)
    while b + window_ms <= cum[-1][0]:
        nxt = min(c[0] for c in cum if c[0] > b)
        # two or more whole windows without a reading inside: one gap window up to the boundary before the next one
        e = b + (nxt - b) // window_ms * window_ms if nxt >= b + 2 * window_ms else b + window_ms
        out.append((b, value(e, 1) - value(b, 1), value(e, 2) - value(b, 2)))
        b = e
    return out


@st.composite
def streams(draw: st.DrawFn, *, ties: bool = False, replacements: bool = True) -> list[MeterReading]:
    n = draw(st.integers(1, 30))
    t = draw(st.integers(0, 10 * 86_400_000))
    imp, exp = draw(st.integers(0, 10**9)), draw(st.integers(0, 10**9))
    out = []
    for seq in range(1, n + 1):
        flags = 0
        if seq > 1:
            t += draw(st.integers(0 if ties else 1, 3 * W))
            if replacements and draw(st.integers(0, 9)) == 0:
                flags = METER_REPLACED
                imp, exp = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
            else:
                imp += draw(st.integers(0, 5000))
                exp += draw(st.integers(0, 5000))
        out.append(rd(seq, t, exp, imp=imp, flags=flags))
    return out
