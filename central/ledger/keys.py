"""Platform keypairs loaded from files, wrapped so that they never print their secret.

A solders ``Keypair``'s ``str()`` is the base58 secret key, so a stray f-string or log call would leak it. Every
platform key is held in a ``PlatformKey`` whose ``repr``/``str`` show only the role and public key; the raw
``Keypair`` is reached through ``.signer`` at the point of signing.

Key files use the Solana CLI format (a JSON array of the 64 secret-key bytes). Like ssh, a key file readable by group
or others is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from central.ledger.errors import KeyFileError
from central.secretfile import FORBIDDEN_BITS


class PlatformKey:
    """A named keypair whose string forms never contain the secret."""

    __slots__ = ("_keypair", "_pubkey", "name")

    def __init__(self, name: str, keypair: Keypair) -> None:
        self.name = name
        self._keypair = keypair
        self._pubkey = keypair.pubkey()  # Keypair.pubkey() derives it anew each call (~20 µs)

    @classmethod
    def generate(cls, name: str) -> PlatformKey:
        return cls(name, Keypair())

    @property
    def pubkey(self) -> Pubkey:
        return self._pubkey

    @property
    def signer(self) -> Keypair:
        """The solders keypair, for signing only. Never log or format it."""
        return self._keypair

    def __repr__(self) -> str:
        return f"PlatformKey({self.name!r}, pubkey={self.pubkey})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlatformKey) and other.name == self.name and other.pubkey == self.pubkey

    def __hash__(self) -> int:
        return hash((self.name, bytes(self.pubkey)))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("platform keys are not picklable")


def load_key(name: str, path: Path) -> PlatformKey:
    """Load a keypair file; errors name the file, never its content."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{name} key file {path} does not exist") from None
    except OSError as e:
        raise KeyFileError(f"{name} key file {path} cannot be read: {e.strerror}") from None
    if st.st_mode & FORBIDDEN_BITS:  # the one rule for secret files (central.secretfile)
        raise KeyFileError(f"{name} key file {path} is accessible by group or others (mode {st.st_mode & 0o777:04o}); "
                           f"a secret file must be readable by its owner only: chmod 600 {path}")
    try:
        raw = json.loads(path.read_text("utf-8"))
        ok = isinstance(raw, list) and len(raw) == 64 and all(isinstance(b, int) and 0 <= b < 256 for b in raw)
        keypair = Keypair.from_bytes(bytes(raw)) if ok else None
    except (ValueError, OSError, UnicodeDecodeError):
        keypair = None
    if keypair is None:
        # Deliberately no detail: parser messages can quote file content.
        raise KeyFileError(f"{name} key file {path} is not a Solana keypair file (JSON array of 64 bytes)")
    return PlatformKey(name, keypair)


def write_key(key: PlatformKey, path: Path) -> None:
    """Write a new key file with mode 0600, atomically; refuse to overwrite an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(list(bytes(key.signer))).encode()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if path exists: never clobber a key
    except FileExistsError:
        raise KeyFileError(f"{key.name} key file {path} already exists") from None
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_key(name: str, path: Path, *, create: bool) -> tuple[PlatformKey, bool]:
    """Load ``path``; if it is missing and ``create`` (development), generate one with mode 0600.
    Returns the key and whether it was created."""
    if not path.exists() and create:
        key = PlatformKey.generate(name)
        write_key(key, path)
        return key, True
    return load_key(name, path), False
