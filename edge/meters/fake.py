"""In-memory ``MeterReader`` for unit tests of the daemon (no bus, no simulator process).

Either scripted (a sequence of samples and exceptions, returned in order, the last one repeating) or driven by a
simulated household (:class:`edge.simulator.profiles.MeterState`) and a time source. ``fail`` makes it behave like
a meter that does not answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.convert import build_sample
from edge.simulator.profiles import MeterState


class FakeMeterReader:
    def __init__(
        self,
        serial: str,
        *,
        script: Iterable[MeterSample | Exception] | None = None,
        state: MeterState | None = None,
        time_source: Callable[[], float] | None = None,
    ) -> None:
        if (script is None) == (state is None):
            raise ValueError("give either a script or a state")
        self._serial = serial
        self._script = list(script) if script is not None else []
        self._state = state
        self._time = time_source
        self.fail = False
        self.reads = 0
        self.closed = False

    @property
    def serial(self) -> str:
        return self._serial

    async def read(self) -> MeterSample:
        self.reads += 1
        if self.closed:
            raise MeterError(f"meter {self._serial}: reader closed")
        if self.fail:
            raise MeterError(f"meter {self._serial}: did not answer (fake)")
        if self._state is not None:
            assert self._time is not None
            now = self._time()
            snap = self._state.snapshot(now)
            values = {k: Fraction(v) for k, v in snap.items()}
            values["energy_import"] = Fraction(self._state.import_wh)
            values["energy_export"] = Fraction(self._state.export_wh)
            return build_sample(int(now * 1000), values)
        item = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        if isinstance(item, Exception):
            raise item
        return item

    async def close(self) -> None:
        self.closed = True
