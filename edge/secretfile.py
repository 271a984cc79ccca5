"""The one rule for secret files on the gateway (issue 10, D17).

A file that holds a secret — the device key, a password file, the TLS client key, and ``edge.toml`` itself when it
holds a password inline — must not be accessible by group or others: ``mode & 0o077 == 0`` (0600 or 0400, owned by
the user the daemon runs as). Anything else is refused at start with an error naming the file and the fix; the
file's content is never read before the check and never quoted.
"""

from __future__ import annotations

import stat
from pathlib import Path

from edge.errors import ConfigError

#: Permission bits a secret file must not have: any access by group or others.
FORBIDDEN_BITS = 0o077


class SecretFileError(ConfigError):
    """A secret file is accessible by group or others."""


def check_secret_file(path: Path, what: str) -> None:
    """Raise :class:`SecretFileError` when ``path`` (a secret, described by ``what``) is accessible by group or
    others. A missing file is left to the caller (its own error says what is missing)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise SecretFileError(f"{what} {path} cannot be checked: {e.strerror}") from None
    if mode & FORBIDDEN_BITS:
        raise SecretFileError(
            f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); a secret file must be "
            f"readable by its owner only: chmod 600 {path}"
        )
