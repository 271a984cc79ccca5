"""Mailer adapters: the dev mailer records to a directory; the SMTP adapter drives smtplib (mocked at the
third-party edge with autospec)."""

from __future__ import annotations

import smtplib
from pathlib import Path
from unittest import mock

import pytest

from central.config import MailerConfig
from central.identity.mailer import DevMailer, Mail, MailError, SmtpMailer, read_dev_mail


async def test_dev_mailer_records_messages(tmp_path: Path) -> None:
    m = DevMailer(tmp_path / "mail")
    await m.send(Mail("a@example.org", "hi", "body 1", kind="verify", token="t1"))
    await m.send(Mail("b@example.org", "hi", "body 2", kind="reset", token="t2"))
    assert [x.token for x in read_dev_mail(tmp_path / "mail")] == ["t1", "t2"]
    assert [x.token for x in read_dev_mail(tmp_path / "mail", to="B@example.org", kind="reset")] == ["t2"]
    assert len(m.sent) == 2


async def test_smtp_mailer_sends_with_starttls_and_login(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("smtp-secret\n")
    pw.chmod(0o600)  # a secret file: owner-only (central.secretfile)
    cfg = MailerConfig(kind="smtp", smtp_host="mail.example.org", smtp_port=587, smtp_starttls=True,
                       smtp_username="gtx", smtp_password_file=str(pw))
    with mock.patch("central.identity.mailer.smtplib.SMTP", autospec=True) as smtp_cls:
        await SmtpMailer(cfg).send(Mail("a@example.org", "Subject", "Body text"))
    smtp_cls.assert_called_once_with("mail.example.org", 587, timeout=10.0)
    smtp = smtp_cls.return_value.__enter__.return_value
    smtp.starttls.assert_called_once_with()
    smtp.login.assert_called_once_with("gtx", "smtp-secret")
    sent = smtp.send_message.call_args.args[0]
    assert sent["To"] == "a@example.org"
    assert sent["Subject"] == "Subject"
    assert "Body text" in sent.get_content()
    assert "smtp-secret" not in repr(SmtpMailer(cfg))


async def test_smtp_failure_is_translated() -> None:
    cfg = MailerConfig(kind="smtp", smtp_host="mail.example.org")
    with mock.patch("central.identity.mailer.smtplib.SMTP", autospec=True) as smtp_cls:
        smtp_cls.return_value.__enter__.return_value.send_message.side_effect = smtplib.SMTPRecipientsRefused({})
        with pytest.raises(MailError, match="SMTPRecipientsRefused"):
            await SmtpMailer(cfg).send(Mail("a@example.org", "s", "b"))
