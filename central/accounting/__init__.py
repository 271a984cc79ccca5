"""Energy accounting core (pure, no I/O): settlement windows per meter, exact and conserved
(docs/decisions/0007-exact-energy-accounting.md)."""

from central.accounting.merkle import merkle_root
from central.accounting.settlement import METER_REPLACED, Checkpoint, MeterReading, Point, Settlement, Window, settle
from central.accounting.window import DEFAULT_WINDOW_MS, window_start

__all__ = [
    "DEFAULT_WINDOW_MS",
    "METER_REPLACED",
    "Checkpoint",
    "MeterReading",
    "Point",
    "Settlement",
    "Window",
    "merkle_root",
    "settle",
    "window_start",
]
