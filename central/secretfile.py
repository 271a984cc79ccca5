"""The one rule for central's secret files (issue 10, D17).

A file that holds a secret — ``auth.jwt_secret_file``, ``mqtt.password_file``, ``mailer.smtp_password_file``,
``mqtt.signing_key_file`` (central's protocol signing key, when configured), the platform keypairs in
``ledger.keys_dir`` and the embedded ledger's faucet key — must not be accessible by group or others:
``mode & 0o077 == 0`` (0600 or 0400, owned by the user central runs as). Central checks every configured secret file
when it starts, before it touches the database (migrations), and again where each file is read; the error names the
setting, the file and the fix, never the content.
"""

from __future__ import annotations

from pathlib import Path

from central.errors import ConfigError
from gtxconfig import secretfile

#: Permission bits a secret file must not have: any access by group or others (the shared rule, gtxconfig).
FORBIDDEN_BITS = secretfile.FORBIDDEN_BITS


class SecretFileError(ConfigError):
    """A secret file is accessible by group or others."""


def check_secret_file(path: Path | str, setting: str) -> None:
    """Raise :class:`SecretFileError` when ``path`` is accessible by group or others (:mod:`gtxconfig.secretfile`).
    A missing file is left to the reader of the setting (its own error says what is missing)."""
    secretfile.check_secret_file(path, setting, SecretFileError)
