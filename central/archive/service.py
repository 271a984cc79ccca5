"""The archive duty, one round: create the reading partitions ahead of the clock, pack the indexes of partitions
closed for a day (once), then archive (export, check, drop) every partition whose range ended more than
``after_days`` ago. Run by one leader at a time (the
``reading-archive`` job)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from central.archive.pg import PgArchive
from central.archive.settings import ArchiveSettings

DAY_MS = 86_400_000

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ArchiveService:
    archive: PgArchive
    settings: ArchiveSettings
    clock_ms: Callable[[], int] = wall_ms
    work_dir: Path | None = None

    async def run_once(self) -> int:
        """One round; returns how many partitions were archived."""
        now = self.clock_ms()
        await self.archive.ensure_ahead(now, self.settings.ahead_days * DAY_MS)
        await self.archive.pack_before(now - DAY_MS)
        done = await self.archive.archive_before(now - self.settings.after_days * DAY_MS, self.work_dir)
        for m in done:
            log.info("readings archived", extra={"key": m.key, "readings": m.readings, "bytes": m.size})
        return len(done)
