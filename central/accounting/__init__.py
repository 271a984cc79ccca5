"""Energy accounting core (pure, no I/O): accounting windows per meter, exact and conserved
(docs/decisions/0007-exact-energy-accounting.md)."""

from central.accounting.merkle import merkle_root
from central.accounting.window import DEFAULT_WINDOW_MS, window_start
from central.accounting.window_energy import (
    METER_REPLACED,
    Checkpoint,
    ClosedWindows,
    MeterReading,
    Point,
    Window,
    close_windows,
)

__all__ = [
    "DEFAULT_WINDOW_MS",
    "METER_REPLACED",
    "Checkpoint",
    "ClosedWindows",
    "MeterReading",
    "Point",
    "Window",
    "close_windows",
    "merkle_root",
    "window_start",
]
