"""The one rule for secret files on the gateway (issue 10, D17).

A file that holds a secret — the device key, a password file, the TLS client key, and ``edge.toml`` itself when it
holds a password inline — must not be accessible by group or others: ``mode & 0o077 == 0`` (0600 or 0400, owned by
the user the daemon runs as). Anything else is refused at start with an error naming the file and the fix; the
file's content is never read before the check and never quoted.
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import ConfigError
from gtxconfig import secretfile

#: Permission bits a secret file must not have: any access by group or others (the shared rule, gtxconfig).
FORBIDDEN_BITS = secretfile.FORBIDDEN_BITS


class SecretFileError(ConfigError):
    """A secret file is accessible by group or others."""


def check_secret_file(path: Path, what: str) -> None:
    """Raise :class:`SecretFileError` when ``path`` is accessible by group or others (:mod:`gtxconfig.secretfile`).
    A missing file is left to the reader of the setting (its own error says what is missing)."""
    secretfile.check_secret_file(path, what, SecretFileError)
