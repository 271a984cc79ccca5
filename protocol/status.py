"""The gateway's retained status message on ``gtx/v1/d/<device>/status`` (protocol §7).

``{"v":1,"online":true,...}``. The gateway publishes it retained when it connects and again every
``STATUS_INTERVAL_S`` while connected; the broker publishes the last will ``{"v":1,"online":false}`` when the link
dies. Central reads it for the fleet's health (gateways online, outbox depth, alarms). Only ``v`` and ``online`` are
required, so a v1 gateway that sends no health fields stays valid; unknown fields are ignored. It carries nothing
secret (never the pairing code).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from protocol.errors import MalformedError

#: How often a connected gateway republishes its status.
STATUS_INTERVAL_S = 60
#: Upper bounds on what a status may claim (anything larger is malformed, not clipped).
MAX_COUNT = 10**12
MAX_ALARMS = 64
MAX_ALARM_KEY = 64


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    online: bool
    version: str | None = None
    last_seq: int | None = None
    #: Signed records not yet acknowledged by central.
    outbox_depth: int | None = None
    #: Age in seconds of the oldest record not yet acknowledged.
    oldest_age_s: int | None = None
    #: Meters whose last read failed.
    meters_down: int | None = None
    #: Keys of the gateway's alarms (``clock``, ``meters_down``, ``outbox_large``…), sorted; the messages stay on
    #: the gateway's own status page, sorted.
    alarms: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        obj: dict[str, object] = {"v": 1, "online": self.online}
        for name in ("version", "last_seq", "outbox_depth", "oldest_age_s", "meters_down"):
            value = getattr(self, name)
            if value is not None:
                obj[name] = value
        if self.alarms:
            obj["alarms"] = list(self.alarms)
        return json.dumps(obj, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> DeviceStatus:
        """Parse a status payload; an empty payload (retained message cleared) means offline. ``MalformedError``
        for anything that is not a v1 status."""
        if not payload:
            return cls(online=False)
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedError("status is not JSON") from exc
        if not isinstance(obj, dict) or obj.get("v") != 1 or not isinstance(obj.get("online"), bool):
            raise MalformedError("status is not a v1 status")
        version = obj.get("version")
        if version is not None and (not isinstance(version, str) or len(version) > 64):
            raise MalformedError("status version must be a short string")
        counts = {name: _count(obj, name) for name in ("last_seq", "outbox_depth", "oldest_age_s", "meters_down")}
        alarms = obj.get("alarms", [])
        if (
            not isinstance(alarms, list)
            or len(alarms) > MAX_ALARMS
            or not all(isinstance(a, str) and 0 < len(a) <= MAX_ALARM_KEY for a in alarms)
        ):
            raise MalformedError(f"status alarms must be a list of at most {MAX_ALARMS} short strings")
        return cls(online=obj["online"], version=version, alarms=tuple(sorted(set(alarms))), **counts)


def _count(obj: dict[str, object], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise MalformedError(f"status {name} must be a whole number from 0 to {MAX_COUNT}")
    return value


#: The last will, and the final status of a clean shutdown.
OFFLINE_STATUS = DeviceStatus(online=False).to_json()
