"""In-memory fakes of the daemon's I/O ports, for unit tests and examples (never built by the daemon itself)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import MeterError
from edge.meters.base import MeterSample


class FakeMeter:
    """A ``MeterReader`` whose registers advance by fixed steps per read; can be told to fail."""

    def __init__(self, serial: str, *, import_step: int = 10, export_step: int = 3, clock_ms: int = 0) -> None:
        self._serial = serial
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
        if self.fail_with is not None:
            raise MeterError(self.fail_with)
        self.import_wh += self.import_step
        self.export_wh += self.export_step
        self.clock_ms += 1000
        return MeterSample(self.clock_ms, self.import_wh, self.export_wh, 420, {"voltage_l1": 230.1})

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeLink:
    """The uplink's ``Link`` port: records publishes; ``up`` decides whether publish succeeds."""

    up: bool = True
    published: list[tuple[str, bytes, int, bool]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        if not self.up:
            return False
        self.published.append((topic, payload, qos, retain))
        return True

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p, _, _ in self.published if t == topic]
