"""Platform keys, wrapped so that they never print their secret: ``PlatformKey`` (sign a message, show the public
key) and its file kind, ``FileKey``; the PKCS#11 kind is ``central.ledger.hsm.HsmKey``.

A solders ``Keypair``'s ``str()`` is the base58 secret key, so a stray f-string or log call would leak it. Every
platform key is held in a ``PlatformKey`` whose ``repr``/``str`` show only the role and public key; a file key's raw
``Keypair`` is reached through ``FileKey.signer`` only.

Key files use the Solana CLI format (a JSON array of the 64 secret-key bytes). Like ssh, a key file readable by group
or others is refused.
"""

from __future__ import annotations

import abc
import json
import os
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger.errors import KeyFileError
from central.secretfile import FORBIDDEN_BITS


class PlatformKey(abc.ABC):
    """A named platform key: its public key and a way to sign. Its string forms never contain a secret.

    Two kinds: ``FileKey`` (a keypair loaded from a file, for development) and ``central.ledger.hsm.HsmKey`` (the
    private key stays in a PKCS#11 token: the object holds a handle and asks the token for each signature). Code
    that signs uses ``sign_message`` only; nothing on this base class, and nothing on ``HsmKey``, returns private
    key bytes."""

    __slots__ = ("_pubkey", "name")

    def __init__(self, name: str, pubkey: Pubkey) -> None:
        self.name = name
        self._pubkey = pubkey

    @classmethod
    def generate(cls, name: str) -> FileKey:
        """A fresh in-memory file-kind key (development and tests)."""
        return FileKey(name, Keypair())

    @property
    def pubkey(self) -> Pubkey:
        return self._pubkey

    @abc.abstractmethod
    def sign_message(self, message: bytes) -> Signature:
        """The Ed25519 signature of ``message`` (a serialized transaction message)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, pubkey={self.pubkey})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlatformKey) and other.name == self.name and other.pubkey == self.pubkey

    def __hash__(self) -> int:
        return hash((self.name, bytes(self.pubkey)))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("platform keys are not picklable")


class FileKey(PlatformKey):
    """A platform key loaded from a key file: the keypair is in this process's memory (development)."""

    __slots__ = ("_keypair",)

    def __init__(self, name: str, keypair: Keypair) -> None:
        super().__init__(name, keypair.pubkey())  # Keypair.pubkey() derives it anew each call (~20 µs)
        self._keypair = keypair

    @property
    def signer(self) -> Keypair:
        """The solders keypair, for signing only. Never log or format it."""
        return self._keypair

    def sign_message(self, message: bytes) -> Signature:
        return self._keypair.sign_message(message)


def load_key(name: str, path: Path) -> FileKey:
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
    return FileKey(name, keypair)


def write_key(key: FileKey, path: Path) -> None:
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


def load_or_create_key(name: str, path: Path, *, create: bool) -> tuple[FileKey, bool]:
    """Load ``path``; if it is missing and ``create`` (development), generate one with mode 0600.
    Returns the key and whether it was created."""
    if not path.exists() and create:
        key = PlatformKey.generate(name)
        write_key(key, path)
        return key, True
    return load_key(name, path), False
