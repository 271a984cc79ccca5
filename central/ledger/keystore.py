"""Where the platform's keys live: key files (``FileKeyStore``, development, the default) or a PKCS#11 token
(``TokenKeyStore``, ``ledger.key_store = "pkcs11"``). Both hand out ``PlatformKey`` objects that sign; the services
never learn which kind they hold.

Each role has one current key (file ``<keys_dir>/<role>.json``, token label ``<prefix>-<role>``). Rotation
(``central.ledger.rotation``) first creates the role's *next* key (``<role>.next``), moves the on-chain authority to
it, then ``promote``s it: the current key is kept aside as ``<role>.retired-<n>`` (its public key still names what
it signed, e.g. certificate mints it derived) and the next key becomes current. A crash between the steps leaves the
next key in place, and running the rotation again finishes it.
"""

from __future__ import annotations

import abc
import re
from pathlib import Path

from solders.pubkey import Pubkey

from central.ledger.config import HsmConfig, LedgerConfig
from central.ledger.errors import KeyFileError, KeyMissingError, KeyStoreError
from central.ledger.keys import FileKey, PlatformKey, load_key, write_key

NEXT = ".next"
RETIRED = ".retired-"


def next_name(role: str) -> str:
    return role + NEXT


class KeyStore(abc.ABC):
    """The roles' keys in one store. Subclasses implement the five primitive operations on names, and ``where``."""

    kind = "abstract"

    @abc.abstractmethod
    def _has(self, name: str) -> bool:
        ...

    @abc.abstractmethod
    def _load(self, role: str, name: str) -> PlatformKey:
        ...

    @abc.abstractmethod
    def _generate(self, role: str, name: str) -> PlatformKey:
        ...

    @abc.abstractmethod
    def _rename(self, name: str, new_name: str) -> None:
        ...

    @abc.abstractmethod
    def _names(self) -> list[str]:
        ...

    def close(self) -> None:  # noqa: B027 - an optional hook: only the token store has a session to release
        """Release the store (a token session)."""

    @abc.abstractmethod
    def where(self, role: str) -> str:
        """Where a role's key is, for messages (a path or a token label; never a secret)."""

    def exists(self, role: str) -> bool:
        return self._has(role)

    def load(self, role: str) -> PlatformKey:
        """The role's current key; ``KeyMissingError`` (files: ``KeyFileError``) when there is none."""
        return self._load(role, role)

    def create(self, role: str) -> PlatformKey:
        """A new current key for a role that has none (refuses to replace one)."""
        if self._has(role):
            raise KeyStoreError(f"{role} key already exists at {self.where(role)}")
        return self._generate(role, role)

    def load_or_create(self, role: str, *, create: bool) -> tuple[PlatformKey, bool]:
        if create and not self._has(role):
            return self.create(role), True
        return self.load(role), False

    def next_key(self, role: str, *, create: bool) -> PlatformKey | None:
        """The role's next key (rotation in progress), created when missing and ``create``."""
        name = next_name(role)
        if self._has(name):
            return self._load(role, name)
        return self._generate(role, name) if create else None

    def promote(self, role: str) -> str:
        """Make the next key current; the current one becomes ``<role>.retired-<n>`` (returned)."""
        if not self._has(next_name(role)):
            raise KeyMissingError(f"{role} has no next key to promote")
        retired = f"{role}{RETIRED}{len(self.retired_names(role)) + 1}"
        self._rename(role, retired)
        self._rename(next_name(role), role)
        return retired

    def retired_names(self, role: str) -> list[str]:
        pattern = re.compile(re.escape(role + RETIRED) + r"(\d+)$")
        found = [(int(m.group(1)), n) for n in self._names() if (m := pattern.match(n))]
        return [n for _, n in sorted(found)]

    def retired(self, role: str) -> list[Pubkey]:
        """Public keys of the role's retired keys, oldest first."""
        return [self._load(role, n).pubkey for n in self.retired_names(role)]


class FileKeyStore(KeyStore):
    """Solana CLI keypair files in ``keys_dir`` (mode 600)."""

    kind = "file"

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir

    def _path(self, name: str) -> Path:
        return self.keys_dir / f"{name}.json"

    def where(self, role: str) -> str:
        return str(self._path(role))

    def _has(self, name: str) -> bool:
        return self._path(name).exists()

    def _load(self, role: str, name: str) -> FileKey:
        key = load_key(role, self._path(name))
        return key if name == role else FileKey(role, key.signer)

    def _generate(self, role: str, name: str) -> FileKey:
        key = PlatformKey.generate(role)
        write_key(key, self._path(name))
        return key

    def _rename(self, name: str, new_name: str) -> None:
        target = self._path(new_name)
        if target.exists():
            raise KeyFileError(f"{target} already exists")
        self._path(name).rename(target)

    def _names(self) -> list[str]:
        return sorted(p.stem for p in self.keys_dir.glob("*.json")) if self.keys_dir.is_dir() else []


class TokenKeyStore(KeyStore):
    """Keys in a PKCS#11 token, labelled ``<label_prefix>-<name>``; generated there, sensitive, non-extractable."""

    kind = "pkcs11"

    def __init__(self, config: HsmConfig) -> None:
        from gtxhsm import HsmError, Pkcs11Settings, Token  # noqa: PLC0415 - python-pkcs11 only when configured

        self._config = config
        self._error = HsmError
        try:
            self._token = Token.open(Pkcs11Settings(config.module, config.token_label, config.pin_file))
        except HsmError as exc:
            raise KeyStoreError(f"ledger.hsm: {exc}") from None

    def where(self, role: str) -> str:
        return f"token {self._config.token_label!r} label {self._config.label(role)!r}"

    def _has(self, name: str) -> bool:
        try:
            return self._token.has_key(self._config.label(name))
        except self._error as exc:
            raise KeyStoreError(str(exc)) from None

    def _load(self, role: str, name: str) -> PlatformKey:
        from central.ledger.hsm import HsmKey  # noqa: PLC0415

        if not self._has(name):
            raise KeyMissingError(f"{role} key is missing: {self.where(name)}")
        try:
            return HsmKey(role, self._token.key(self._config.label(name)))
        except self._error as exc:
            raise KeyStoreError(str(exc)) from None

    def _generate(self, role: str, name: str) -> PlatformKey:
        from central.ledger.hsm import HsmKey  # noqa: PLC0415

        try:
            return HsmKey(role, self._token.generate(self._config.label(name)))
        except self._error as exc:
            raise KeyStoreError(str(exc)) from None

    def _rename(self, name: str, new_name: str) -> None:
        try:
            self._token.rename(self._config.label(name), self._config.label(new_name))
        except self._error as exc:
            raise KeyStoreError(str(exc)) from None

    def _names(self) -> list[str]:
        prefix = self._config.label_prefix + "-"
        try:
            return [label[len(prefix):] for label in self._token.labels() if label.startswith(prefix)]
        except self._error as exc:
            raise KeyStoreError(str(exc)) from None

    def close(self) -> None:
        self._token.close()


def open_key_store(config: LedgerConfig) -> KeyStore:
    """The configured store (composition roots and commands only); close it when done."""
    if config.key_store == "pkcs11":
        return TokenKeyStore(config.hsm)
    return FileKeyStore(config.keys_dir)
