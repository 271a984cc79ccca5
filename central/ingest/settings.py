"""Ingest settings: the ``[ingest]`` table of the central config, parsed once into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gtxconfig import Match, Range


@dataclass(frozen=True)
class IngestSettings:
    #: MQTT v5 shared-subscription group: every worker process in the group gets a share of the readings.
    share_group: Annotated[str, Match(r"[A-Za-z0-9_-]{1,64}", "1..64 characters of A-Z a-z 0-9 _ -")] = "central"
    #: Batches one process handles at once: while one group transaction is in flight the others are decoded and
    #: verified and then stored together in the next group.
    concurrency: Annotated[int, Range(1, 64)] = 16
    #: How far ahead of central's clock a reading's timestamp may be.
    max_future_ms: Annotated[int, Range(0, 3_600_000)] = 5 * 60 * 1000
    #: How old a reading's timestamp may be (against central's clock); older ones are rejected with ``bad_timestamp``
    #: (so a gateway with an unset clock cannot make accounting span decades).
    max_age_ms: Annotated[int, Range(3_600_000, 366 * 86_400_000)] = 60 * 86_400_000
    #: Per-device rate limit of readings, sync and status messages (token bucket): sustained messages per second
    #: and burst. Messages over it are dropped unanswered (the device sends them again); 0 turns the limit off.
    device_messages_per_s: Annotated[int, Range(0, 100_000)] = 50
    device_burst: Annotated[int, Range(1, 1_000_000)] = 200
