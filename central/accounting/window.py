"""Accounting windows: fixed-length, aligned to UTC (multiples of the window length since the Unix epoch)."""

from __future__ import annotations

from central.accounting.errors import WindowConfigError

DEFAULT_WINDOW_MS = 15 * 60 * 1000
DAY_MS = 24 * 60 * 60 * 1000


def check_window_ms(window_ms: int) -> int:
    """A window length must divide a UTC day (so windows never straddle midnight) and be a whole second."""
    if window_ms <= 0 or window_ms % 1000 or DAY_MS % window_ms:
        raise WindowConfigError(f"window length {window_ms} ms must be a whole number of seconds dividing a day")
    return window_ms


def window_start(timestamp_ms: int, window_ms: int = DEFAULT_WINDOW_MS) -> int:
    """Start of the window containing ``timestamp_ms`` (a timestamp on a boundary starts that window)."""
    return timestamp_ms - timestamp_ms % window_ms
