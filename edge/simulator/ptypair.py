"""A virtual null-modem cable: two pseudo-terminals whose master ends are bridged in the running event loop.

The meter side opens ``pair.a`` and the gateway side opens ``pair.b`` like two ends of an RS-485 adapter pair;
bytes written to one come out of the other, unchanged (both ends in raw mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from types import TracebackType


class PtyPair:
    def __init__(self) -> None:
        self._fds: list[int] = []
        self.a = ""
        self.b = ""
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> PtyPair:
        m1, s1 = os.openpty()
        m2, s2 = os.openpty()
        for fd in (m1, m2, s1, s2):
            tty.setraw(fd)
        self.a, self.b = os.ttyname(s1), os.ttyname(s2)
        self._fds = [m1, m2, s1, s2]
        for fd in (m1, m2):
            os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(m1, self._pump, m1, m2)
        self._loop.add_reader(m2, self._pump, m2, m1)
        return self

    @staticmethod
    def _pump(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, OSError):
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(dst, view)
            except BlockingIOError:
                continue
            except OSError:
                return
            view = view[n:]

    def close(self) -> None:
        if self._loop is not None and self._fds:
            for fd in self._fds[:2]:
                self._loop.remove_reader(fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    async def __aenter__(self) -> PtyPair:
        return self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
