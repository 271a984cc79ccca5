"""The mailer's adapters (the port, ``Mailer``, is in ``central.identity.mail``).

- ``DevMailer`` records every message as a JSON file in ``mailer.dev_dir`` (``<time>-<id>.json`` with ``to``,
  ``subject``, ``body``, ``kind``, ``token`` for verification/reset links) and in memory; tests and the demo read
  them from there. It never sends anything.
- ``SmtpMailer`` sends through an SMTP server (stdlib ``smtplib`` in a worker thread; optional STARTTLS + login).
"""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import time
import uuid
from dataclasses import asdict
from email.message import EmailMessage
from pathlib import Path

from aiohttp import web

from central.config import MailerConfig
from central.identity.errors import MailError
from central.identity.mail import Mail, Mailer
from central.secretfile import check_secret_file

__all__ = ["MAILER", "DevMailer", "Mail", "MailError", "Mailer", "SmtpMailer", "build_mailer", "read_dev_mail"]


class DevMailer:
    """Writes messages to ``directory`` (created if needed) and keeps them in ``sent``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.sent: list[Mail] = []

    async def send(self, mail: Mail) -> None:
        self.sent.append(mail)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.directory / f".{name}.tmp"
        # The messages carry live tokens: readable by this user only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(asdict(mail), indent=1))
        tmp.replace(self.directory / name)


def read_dev_mail(directory: str | Path, *, to: str | None = None, kind: str | None = None) -> list[Mail]:
    """Messages the dev mailer recorded in ``directory``, oldest first (optionally filtered)."""
    out: list[Mail] = []
    path = Path(directory)
    if not path.is_dir():
        return out
    for file in sorted(path.glob("*.json")):
        mail = Mail(**json.loads(file.read_text(encoding="utf-8")))
        if (to is None or mail.to == to.lower()) and (kind is None or mail.kind == kind):
            out.append(mail)
    return out


class SmtpMailer:
    def __init__(self, config: MailerConfig) -> None:
        self._config = config
        self._password = ""
        if config.smtp_password_file:
            check_secret_file(config.smtp_password_file, "mailer.smtp_password_file")
            try:
                self._password = Path(config.smtp_password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise MailError(f"mailer.smtp_password_file cannot be read: {exc.strerror}") from None

    def __repr__(self) -> str:
        return f"SmtpMailer(host={self._config.smtp_host!r}, port={self._config.smtp_port})"

    async def send(self, mail: Mail) -> None:
        msg = EmailMessage()
        msg["From"] = self._config.from_addr
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg.set_content(mail.body)
        await asyncio.to_thread(self._send, msg)

    def _send(self, msg: EmailMessage) -> None:
        c = self._config
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout_s) as smtp:
                if c.smtp_starttls:
                    smtp.starttls()
                if c.smtp_username:
                    smtp.login(c.smtp_username, self._password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP delivery to {c.smtp_host}:{c.smtp_port} failed: {type(exc).__name__}") from None


def build_mailer(config: MailerConfig) -> Mailer:
    if config.kind == "smtp":
        return SmtpMailer(config)
    return DevMailer(config.dev_dir)


MAILER = web.AppKey("gtx.mailer", Mailer)
