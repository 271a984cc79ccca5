"""The port between meter access and the rest of the daemon.

The daemon (outbox, signing, MQTT) depends only on this module; Modbus and DLMS readers implement it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One successful read of one meter, already converted to integers.

    ``timestamp_ms`` is UTC milliseconds at the moment the meter was read (the gateway clock).
    ``import_wh``/``export_wh`` are the cumulative A+ / A- registers in Wh; ``power_w`` is instantaneous active
    power (positive = import) or ``None`` when the meter does not provide it. ``extra`` carries any further mapped
    measurements (voltage_l1, …) as display values for the status page, never used for money or energy.
    ``meter_time_ms`` is the meter's own clock for this reading when the meter reports one (a P1 telegram's
    timestamp), compared with the gateway clock for the clock alarm; it is not signed.
    """

    timestamp_ms: int
    import_wh: int
    export_wh: int
    power_w: int | None
    extra: Mapping[str, float] = field(default_factory=dict)
    meter_time_ms: int | None = None


class MeterReader(Protocol):
    """One configured meter. ``read`` raises ``edge.errors.MeterError`` when the meter does not answer."""

    @property
    def serial(self) -> str: ...

    async def read(self) -> MeterSample: ...

    async def close(self) -> None: ...
