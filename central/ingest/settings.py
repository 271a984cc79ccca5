"""Ingest settings: the ``[ingest]`` table of the central config, parsed once into a frozen dataclass."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from central.errors import ConfigError

_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class IngestSettings:
    #: MQTT v5 shared-subscription group: every worker process in the group gets a share of the readings.
    share_group: str = "central"
    #: Batches one process handles at once: while one group transaction is in flight the others are decoded and
    #: verified and then stored together in the next group.
    concurrency: int = 16
    #: How far ahead of central's clock a reading's timestamp may be.
    max_future_ms: int = 5 * 60 * 1000
    #: How old a reading's timestamp may be (against central's clock); older ones are rejected with ``bad_timestamp``
    #: (so a gateway with an unset clock cannot make accounting span decades).
    max_age_ms: int = 60 * 86_400_000
    #: Per-device rate limit of readings, sync and status messages (token bucket): sustained messages per second
    #: and burst. Messages over it are dropped unanswered (the device sends them again); 0 turns the limit off.
    device_messages_per_s: int = 50
    device_burst: int = 200

    def __post_init__(self) -> None:
        if not _GROUP.match(self.share_group):
            raise ConfigError("ingest.share_group must be 1..64 characters of A-Z a-z 0-9 _ -")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError("ingest.concurrency must be 1..64")
        if not 0 <= self.max_future_ms <= 3_600_000:
            raise ConfigError("ingest.max_future_ms must be 0..3600000")
        if not 3_600_000 <= self.max_age_ms <= 366 * 86_400_000:
            raise ConfigError("ingest.max_age_ms must be 3600000..31622400000 (1 hour .. 366 days)")
        if not 0 <= self.device_messages_per_s <= 100_000:
            raise ConfigError("ingest.device_messages_per_s must be 0..100000 (0 = no limit)")
        if not 1 <= self.device_burst <= 1_000_000:
            raise ConfigError("ingest.device_burst must be 1..1000000")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> IngestSettings:
        known = {f.name: f.type for f in fields(cls)}
        for key, value in section.items():
            if key not in known:
                raise ConfigError(f"ingest.{key} is not a known setting")
            want = str if key == "share_group" else int
            if not isinstance(value, want) or isinstance(value, bool):
                raise ConfigError(f"ingest.{key} must be {want.__name__}")
        return cls(**dict(section))
