"""The one rule for files that hold a secret, shared by both programs.

A file that holds a secret (a key, a password file, a config file with a password written in it) must not be
accessible by group or others: ``mode & 0o077 == 0`` (0600 or 0400, owned by the user the program runs as). The
file's content is never read by the check and never quoted; the error names the setting, the file and the fix.
"""

from __future__ import annotations

import stat
from pathlib import Path

from gtxconfig.errors import ConfigError

#: Permission bits a secret file must not have: any access by group or others.
FORBIDDEN_BITS = 0o077


def check_secret_file(path: Path | str, what: str, error: type[ConfigError] = ConfigError) -> None:
    """Raise ``error`` when ``path`` (the secret described by ``what``) is accessible by group or others. A
    missing file is left to the reader of the setting (its own error says what is missing)."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise error(f"{what} {p} cannot be checked: {exc.strerror}") from None
    if mode & FORBIDDEN_BITS:
        raise error(
            f"{what} {p} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); a secret file must be "
            f"readable by its owner only: chmod 600 {p}"
        )
