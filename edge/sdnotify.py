"""systemd notification (READY, WATCHDOG, STOPPING, STATUS) over $NOTIFY_SOCKET, no dependency."""

from __future__ import annotations

import contextlib
import socket


class Notifier:
    """Sends datagrams to systemd's notify socket; a no-op when not run by systemd (socket path None)."""

    def __init__(self, socket_path: str | None) -> None:
        self._addr: str | None = None
        if socket_path:
            # '@' means an abstract socket: a leading NUL byte on the wire.
            self._addr = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, message: str) -> bool:
        if self._addr is None:
            return False
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), self._addr)
            return True
        return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")
