"""Household load and PV profiles, and the cumulative energy registers they drive (pure, no I/O).

Time is an injectable source (seconds since the Unix epoch, UTC), so tests can fast-forward a day in
microseconds. Energy is integrated exactly in milliwatt-hours with a fixed step so the registers are
monotonic and reproducible: the same profile and the same time give the same registers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

TimeSource = Callable[[], float]
STEP_S = 10  # integration step


class Kind(StrEnum):
    PROSUMER = "prosumer"  # rooftop PV plus household load: exports around noon, imports at night
    CONSUMER = "consumer"  # household load only


@dataclass(frozen=True, slots=True)
class Profile:
    kind: Kind
    pv_peak_w: int = 5000
    base_load_w: int = 350
    seed: int = 0

    def load_w(self, t: float) -> float:
        """Household consumption: base load, a morning and a larger evening peak, a little deterministic wobble."""
        h = (t % 86400) / 3600
        morning = 900 * math.exp(-(((h - 7.5) / 1.0) ** 2))
        evening = 1600 * math.exp(-(((h - 19.5) / 1.5) ** 2))
        wobble = 60 * math.sin(t / 97.0 + self.seed) + 40 * math.sin(t / 13.0 + 2 * self.seed)
        return max(50.0, self.base_load_w + morning + evening + wobble)

    def pv_w(self, t: float) -> float:
        """PV production: a half-sine from 06:00 to 18:00 UTC peaking at noon."""
        if self.kind is Kind.CONSUMER:
            return 0.0
        h = (t % 86400) / 3600
        if not 6.0 <= h <= 18.0:
            return 0.0
        return self.pv_peak_w * math.sin(math.pi * (h - 6.0) / 12.0)

    def net_w(self, t: float) -> float:
        """Active power at the grid connection, positive = import."""
        return self.load_w(t) - self.pv_w(t)


class SimulatedRegisters:
    """Cumulative import/export registers of one simulated meter, advanced by integrating the profile."""

    def __init__(self, profile: Profile, start: float, *, import_wh: int = 0, export_wh: int = 0) -> None:
        self.profile = profile
        self._t = float(start)
        self._import_mwh = import_wh * 1000
        self._export_mwh = export_wh * 1000

    def advance(self, now: float) -> None:
        """Integrate up to ``now``. Time never goes backwards for a meter: an earlier ``now`` is ignored."""
        while self._t < now:
            dt = min(STEP_S, now - self._t)
            p = self.profile.net_w(self._t + dt / 2)
            mwh = round(abs(p) * dt * 1000 / 3600)
            if p >= 0:
                self._import_mwh += mwh
            else:
                self._export_mwh += mwh
            self._t += dt

    @property
    def import_wh(self) -> int:
        return self._import_mwh // 1000

    @property
    def export_wh(self) -> int:
        return self._export_mwh // 1000

    def snapshot(self, now: float) -> dict[str, float]:
        """All simulated measurements at ``now`` in base units (Wh, W, V, A, Hz)."""
        self.advance(now)
        p = self.profile.net_w(now)
        wobble = math.sin(now / 31.0 + self.profile.seed)
        v1, v2, v3 = 230.0 + 2.0 * wobble, 231.0 - 1.5 * wobble, 229.5 + wobble
        per_phase = p / 3
        return {
            "energy_import": self._import_mwh / 1000,
            "energy_export": self._export_mwh / 1000,
            "power_active": p,
            "voltage_l1": v1,
            "voltage_l2": v2,
            "voltage_l3": v3,
            "current_l1": abs(per_phase) / v1,
            "current_l2": abs(per_phase) / v2,
            "current_l3": abs(per_phase) / v3,
            "power_l1": per_phase,
            "power_l2": per_phase,
            "power_l3": per_phase,
            "frequency": 50.0 + 0.02 * wobble,
        }


class FastClock:
    """A time source running ``speed`` times faster than real time from ``start`` (for demos)."""

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        self._origin = time.monotonic()
        self._start = time.time() if start is None else start
        self.speed = speed

    def __call__(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self.speed


class ManualClock:
    """A time source tests move by hand."""

    def __init__(self, start: float) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
