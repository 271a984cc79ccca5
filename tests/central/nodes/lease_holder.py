"""Test helper process: a node's sticky leadership (``SessionLock``) with a short lease, round after round, each round
a step that lasts longer than the lease (so only the heartbeat keeps the session alive). Prints ``round <held>`` after
each round begins; stops on SIGTERM.

    python lease_holder.py <dsn> <lease_s> <step_s>
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from central.db.leadership import SessionLock
from central.locks import ACCOUNTANT


async def main(dsn: str, lease_s: float, step_s: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    lock = SessionLock(dsn, ACCOUNTANT, lease_s=lease_s)
    try:
        while not stop.is_set():
            async with lock.hold() as held:
                print("round", held, flush=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), step_s)
    finally:
        await lock.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
