"""What the daemon knows about itself, for the status page, ``/api/status``, the CLI and the logs.

Pure: the services write into ``StatusBoard``; ``StatusBoard.snapshot`` turns it into plain JSON-able data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.meters.base import MeterSample
from edge.outbox import DeadLetter, OutboxStats


@dataclass(slots=True)
class MeterStatus:
    serial: str
    protocol: str
    address: str
    model: str
    interval_s: int
    last_sample: MeterSample | None = None
    last_ok_ms: int | None = None
    last_error: str | None = None
    last_error_ms: int | None = None
    ok: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    #: meters that report their own clock (P1): the bound of the clock alarm, 0 = no check
    max_clock_skew_s: int = 0
    #: meter clock minus gateway clock at the last reading that carried one
    clock_offset_ms: int | None = None

    @property
    def up(self) -> bool | None:
        if self.ok == 0 and self.failed == 0:
            return None
        return self.consecutive_failures == 0

    def record_ok(self, sample: MeterSample, now_ms: int) -> None:
        self.last_sample = sample
        self.last_ok_ms = now_ms
        self.ok += 1
        self.consecutive_failures = 0

    def record_error(self, error: str, now_ms: int) -> None:
        self.last_error = error
        self.last_error_ms = now_ms
        self.failed += 1
        self.consecutive_failures += 1

    def to_dict(self) -> dict[str, Any]:
        total = self.ok + self.failed
        s = self.last_sample
        return {
            "serial": self.serial,
            "protocol": self.protocol,
            "address": self.address,
            "model": self.model,
            "interval_s": self.interval_s,
            "up": self.up,
            "last": None
            if s is None
            else {
                "timestamp_ms": s.timestamp_ms,
                "import_wh": s.import_wh,
                "export_wh": s.export_wh,
                "power_w": s.power_w,
                "extra": dict(s.extra),
            },
            "meter_clock_offset_s": None if self.clock_offset_ms is None else round(self.clock_offset_ms / 1000),
            "last_ok_ms": self.last_ok_ms,
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "reads_ok": self.ok,
            "reads_failed": self.failed,
            "success_rate": None if total == 0 else round(self.ok / total, 4),
        }


@dataclass(slots=True)
class LinkState:
    broker: str
    state: str = "starting"  # starting | connecting | connected | disconnected | stopped
    since_ms: int | None = None
    last_error: str | None = None
    connects: int = 0
    last_ack_ms: int | None = None
    last_publish_ms: int | None = None
    inflight_batches: int = 0
    inflight_records: int = 0
    published_records: int = 0
    acked_records: int = 0


MESSAGE_KINDS = ("ack", "challenge", "sync")


@dataclass(slots=True)
class IgnoredMessages:
    """Messages on the device's topics that claimed to come from central and were not acted on (protocol §10).

    ``forged``: not an envelope central signed for this device with the pinned key (unsigned, bad signature, wrong
    kind, another device, malformed). ``replayed``: genuinely signed but not current — an ack for a batch not in
    flight, a challenge already answered or expired, a sync reply for a request not outstanding. ``unpaired``:
    genuine challenges whose pairing MAC does not match this gateway's pairing code (not signed).
    """

    forged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MESSAGE_KINDS, 0))
    replayed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MESSAGE_KINDS, 0))
    unpaired: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: {"forged": self.forged[k], "replayed": self.replayed[k]} for k in MESSAGE_KINDS}
        out["challenge"]["unpaired"] = self.unpaired
        return out


@dataclass(slots=True)
class StatusBoard:
    device_id: str
    version: str
    started_ms: int
    link: LinkState
    meters: dict[str, MeterStatus] = field(default_factory=dict)
    clock_synced: bool | None = None
    challenge_answered_ms: int | None = None
    accepted_after_challenge_ms: int | None = None
    alarms: dict[str, str] = field(default_factory=dict)
    disk_free_bytes: int | None = None
    outbox_bytes: int | None = None
    ignored: IgnoredMessages = field(default_factory=IgnoredMessages)
    # Shown only on the authenticated status page (and /api/status): never on MQTT, never in logs.
    pairing_code: str | None = field(default=None, repr=False)

    @property
    def verified(self) -> bool:
        return self.challenge_answered_ms is not None and self.accepted_after_challenge_ms is not None

    def alarm(self, key: str, message: str | None) -> bool:
        """Set (message) or clear (None) an alarm; True if that changed something."""
        if message is None:
            return self.alarms.pop(key, None) is not None
        changed = self.alarms.get(key) != message
        self.alarms[key] = message
        return changed

    def snapshot(
        self, now_ms: int, outbox: OutboxStats, dead_letters: list[DeadLetter], extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        link = self.link
        return {
            "device_id": self.device_id,
            "version": self.version,
            "now_ms": now_ms,
            "uptime_s": max(0, (now_ms - self.started_ms) // 1000),
            "clock_synced": self.clock_synced,
            "verified": self.verified,
            "pairing_code": self.pairing_code,
            "challenge_answered_ms": self.challenge_answered_ms,
            "accepted_after_challenge_ms": self.accepted_after_challenge_ms,
            "alarms": [{"key": k, "message": v} for k, v in sorted(self.alarms.items())],
            "meters": [m.to_dict() for m in self.meters.values()],
            "outbox": {
                "depth": outbox.depth,
                "pending_unsigned": outbox.pending_unsigned,
                "oldest_age_s": None
                if outbox.oldest_timestamp_ms is None
                else max(0, (now_ms - outbox.oldest_timestamp_ms) // 1000),
                "last_seq": outbox.last_seq,
                "needs_sync": outbox.needs_sync,
                "bytes": self.outbox_bytes,
                "disk_free_bytes": self.disk_free_bytes,
            },
            "dead_letters": {
                "count": outbox.dead_letters,
                "recent": [
                    {"seq": d.seq, "meter": d.meter_serial, "timestamp_ms": d.timestamp_ms, "reason": d.reason,
                     "moved_ms": d.moved_ms}
                    for d in dead_letters
                ],
            },
            "mqtt": {
                "broker": link.broker,
                "state": link.state,
                "since_ms": link.since_ms,
                "last_error": link.last_error,
                "connects": link.connects,
                "last_ack_ms": link.last_ack_ms,
                "last_publish_ms": link.last_publish_ms,
                "inflight_batches": link.inflight_batches,
                "inflight_records": link.inflight_records,
                "published_records": link.published_records,
                "acked_records": link.acked_records,
            },
            "ignored_from_central": self.ignored.to_dict(),
            **(dict(extra) if extra else {}),
        }
