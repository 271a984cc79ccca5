"""The mailer port: what identity sends (verification and reset links, notices) and the one method it needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str = field(repr=False)  # carries the token
    #: What the message is for ("verify", "reset"), so the dev mailer's readers can find it.
    kind: str = ""
    #: The single-use token the message carries (dev mailer only records it; SMTP sends it inside ``body``).
    token: str = field(default="", repr=False)


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Hand the message to the mail system; raises ``MailError`` when it cannot."""
        ...
