"""In-memory fakes of the daemon's I/O ports, for unit tests and examples (never built by the daemon itself). The
meter port's fake is :class:`edge.meters.fake.FakeMeterReader`."""

from __future__ import annotations

from dataclasses import dataclass, field


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
