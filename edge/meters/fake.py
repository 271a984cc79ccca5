"""In-memory ``MeterReader`` for unit tests of the daemon (no bus, no simulator process).

Three ways to drive it: stepping (the default: registers start at 1,000,000 / 500,000 Wh and advance by fixed steps,
the clock by one second, per read), scripted (a sequence of samples and exceptions, returned in order, the last one
repeating), or a simulated household (:class:`edge.simulator.profiles.SimulatedRegisters`) with a time source.
``fail_with`` makes it behave like a meter that does not answer, with that message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.convert import build_sample
from edge.simulator.profiles import SimulatedRegisters


class FakeMeterReader:
    def __init__(
        self,
        serial: str,
        *,
        script: Iterable[MeterSample | Exception] | None = None,
        state: SimulatedRegisters | None = None,
        time_source: Callable[[], float] | None = None,
        import_step: int = 10,
        export_step: int = 3,
        clock_ms: int = 0,
    ) -> None:
        if script is not None and state is not None:
            raise ValueError("give a script or a state, not both")
        if state is not None and time_source is None:
            raise ValueError("a state needs a time source")
        self._serial = serial
        self._script = list(script) if script is not None else None
        self._state = state
        self._time = time_source
        self.import_wh = 1_000_000
        self.export_wh = 500_000
        self.import_step = import_step
        self.export_step = export_step
        self.clock_ms = clock_ms
        self.fail_with: str | None = None
        self.reads = 0
        self.closed = False

    @property
    def serial(self) -> str:
        return self._serial

    async def read(self) -> MeterSample:
        self.reads += 1
        if self.closed:
            raise MeterError(f"meter {self._serial}: reader closed")
        if self.fail_with is not None:
            raise MeterError(self.fail_with)
        if self._state is not None and self._time is not None:
            now = self._time()
            snap = self._state.snapshot(now)
            values = {k: Fraction(v) for k, v in snap.items()}
            values["energy_import"] = Fraction(self._state.import_wh)
            values["energy_export"] = Fraction(self._state.export_wh)
            return build_sample(int(now * 1000), values)
        if self._script is not None:
            item = self._script.pop(0) if len(self._script) > 1 else self._script[0]
            if isinstance(item, Exception):
                raise item
            return item
        self.import_wh += self.import_step
        self.export_wh += self.export_step
        self.clock_ms += 1000
        return MeterSample(self.clock_ms, self.import_wh, self.export_wh, 420, {"voltage_l1": 230.1})

    async def close(self) -> None:
        self.closed = True
