"""The same-run baseline every benchmark prints: machines differ (Ed25519 verification ran 1.7x slower on one kind
than on another), so a figure is quoted together with what this machine did on a fixed, trivial task in the same run.

The task is bare Ed25519 signature verification with ``solders`` (what central's ingest uses), single-threaded, for
about one second. ``ratio(x)`` expresses a figure in units of that baseline so runs on different machines compare.
"""

from __future__ import annotations

import os
import time

from solders.keypair import Keypair

_cached: float | None = None


def verifies_per_s(seconds: float = 1.0) -> float:
    """Bare Ed25519 verifications per second on one core, measured now (once per process)."""
    global _cached  # noqa: PLW0603 - one measurement per benchmark run
    if _cached is None:
        kp = Keypair()
        msg = b"GTX baseline " + bytes(160)  # about one reading record's size
        sig, pub = kp.sign_message(msg), kp.pubkey()
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for _ in range(500):
                sig.verify(pub, msg)
            n += 500
        _cached = n / elapsed
    return _cached


def print_baseline(script: str) -> float:
    """Measure and print the baseline line; returns verifications/s."""
    rate = verifies_per_s()
    print(
        f"{script}: baseline (same run) {rate:,.0f} bare Ed25519 verifications/s on one core (solders); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return rate


def ratio(per_s: float) -> str:
    """A rate as a multiple of the baseline, e.g. ``0.62x baseline``."""
    return f"{per_s / verifies_per_s():.3f}x baseline"
