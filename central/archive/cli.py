"""``gridtokenx-central archive ...``: verify an archive file; run one archive round now."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from central.archive.directory import DirectoryArchiveStore
from central.archive.parquet import verify_file
from central.archive.pg import PgArchive
from central.archive.service import ArchiveService
from central.config import CentralConfig
from central.db.pool import create_pool

#: Problems printed at most (the count is always printed).
MAX_PRINTED = 50


def verify_command(path: str) -> int:
    """Re-check every signature and hash chain of one archive file; exit 1 naming each bad record."""
    try:
        with Path(path).open("rb") as f:
            report = verify_file(f)
    except OSError as exc:
        print(f"{path}: cannot be read: {exc.strerror}", file=sys.stderr)
        return 2
    for problem in report.problems[:MAX_PRINTED]:
        print(f"{path}: {problem}", file=sys.stderr)
    if not report.ok:
        print(f"{path}: FAILED: {len(report.problems)} problem(s) in {report.records} record(s)", file=sys.stderr)
        return 1
    info = report.info
    assert info is not None
    print(f"{path}: OK: {report.records} records, signatures and hash chains verified "
          f"(range {info.from_ms} .. {info.to_ms} ms)")
    return 0


def run_command(config: CentralConfig) -> int:
    """One archive round now (partitions ahead, then archive what is old enough); prints what it archived."""

    async def run() -> int:
        pool = await create_pool(config.database)
        try:
            store = DirectoryArchiveStore(Path(config.archive.directory))
            archive = PgArchive(pool, store, row_group_rows=config.archive.row_group_rows)
            return await ArchiveService(archive, config.archive).run_once()
        finally:
            await pool.close()

    print(f"archived {asyncio.run(run())} partition(s)")
    return 0
