"""Is the gateway clock synchronised (NTP/PTP)? Asked of the kernel with adjtimex(2), no daemon needed.

A reading taken while the clock is not synchronised carries the CLOCK_UNSYNCED flag.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex return value: clock not synchronised


class _Timex(ctypes.Structure):
    # Only the leading fields matter; the tail is padding large enough for every ABI (struct timex is < 256 bytes).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def kernel_clock_synced() -> bool | None:
    """True/False from adjtimex; None when the call is not available (not Linux)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        tx = _Timex()
        state = int(libc.adjtimex(ctypes.byref(tx)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def make_clock_check(mode: str) -> Callable[[], bool]:
    """``adjtimex``: ask the kernel (unknown counts as synchronised, with a log line); ``none``: always synced."""
    if mode == "none":
        return lambda: True
    if kernel_clock_synced() is None:
        log.warning("cannot ask the kernel whether the clock is synchronised; assuming it is")
        return lambda: True

    def check() -> bool:
        return kernel_clock_synced() is not False

    return check
