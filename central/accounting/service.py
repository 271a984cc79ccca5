"""The accounting service: turns verified readings into final accounting windows, exactly once per (meter, window)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from central.accounting.metrics import AccountingMetrics
from central.accounting.store import AccountingStore, ConcurrentAccountingError, settle_accounts
from central.accounting.window import DEFAULT_WINDOW_MS, check_window_ms

log = logging.getLogger(__name__)

DEFAULT_HORIZON_MS = 6 * 3600 * 1000
DEFAULT_MAX_WINDOWS = 10_000


@dataclass
class AccountingService:
    store: AccountingStore
    window_ms: int = DEFAULT_WINDOW_MS
    batch_meters: int = 2000
    #: Readings loaded per meter and pass reach this far past its last final boundary (bounds memory; a backlog is
    #: caught up over several passes).
    horizon_ms: int = DEFAULT_HORIZON_MS
    #: Windows finalised per pass at most (one transaction; bounds its memory and duration). A larger backlog is
    #: continued from the checkpoints by the next passes.
    max_windows: int = DEFAULT_MAX_WINDOWS
    metrics: AccountingMetrics = field(default_factory=AccountingMetrics.for_registry)

    def __post_init__(self) -> None:
        check_window_ms(self.window_ms)
        if self.horizon_ms < self.window_ms:
            raise ValueError("the accounting horizon must be at least one window")
        if self.max_windows < 1:
            raise ValueError("max_windows must be at least 1")

    async def run_once(self) -> int:
        """One pass over the meters that are due; returns how many windows became final. Call until it returns 0
        to catch up a backlog. A concurrent accountant's win is not an error: its windows stand, ours are
        recomputed from its checkpoints next time."""
        started = time.perf_counter()
        accounts = await self.store.due_meters(self.window_ms, self.batch_meters)
        if not accounts:
            return 0
        readings = await self.store.readings_after(accounts, self.window_ms, self.horizon_ms)
        # CPU-bound and pure: computed in a worker thread so the event loop (the API) keeps answering.
        results = await asyncio.to_thread(settle_accounts, accounts, readings, self.window_ms, self.max_windows)
        if not results:
            return 0
        try:
            await self.store.record(self.window_ms, results)
        except ConcurrentAccountingError as exc:
            self.metrics.races.inc()
            log.info("accounting pass lost a race, retrying later: %s", exc)
            return 0
        windows = [w for _, s in results for w in s.windows]
        self.metrics.windows.inc(len(windows))
        self.metrics.energy.labels(direction="export").inc(sum(w.export_wh for w in windows))
        self.metrics.energy.labels(direction="import").inc(sum(w.import_wh for w in windows))
        self.metrics.pass_seconds.observe(time.perf_counter() - started)
        return len(windows)
