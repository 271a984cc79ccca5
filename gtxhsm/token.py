"""One logged-in session on a PKCS#11 token and the Ed25519 keys in it.

``Token.open`` loads the module (once per process and module path: PKCS#11 allows one ``C_Initialize`` per
process), finds the token by label and logs in with the PIN read from a secret file. Keys are found by label
(``CKA_LABEL``); ``generate`` creates a key pair on the token whose private half is ``CKA_SENSITIVE`` and not
``CKA_EXTRACTABLE``, so no call, ours or anyone's, can read it out. ``rename`` relabels a key (key rotation keeps
the configured label for the current key and moves the old one aside).

One session serves every key of the token; PKCS#11 sessions carry operation state, so signatures are serialised
by a lock (an Ed25519 signature on SoftHSM2 takes tens of microseconds, on an SE050 a few milliseconds).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import NoSuchKey, NoSuchToken, PKCS11Error

from gtxconfig.errors import ConfigError
from gtxconfig.secretfile import check_secret_file
from gtxhsm.errors import HsmError

#: RFC 8410 object identifier of Ed25519, DER-encoded: the ``CKA_EC_PARAMS`` of an Ed25519 key pair.
ED25519_PARAMS = bytes.fromhex("06032b6570")
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_libraries: dict[str, Any] = {}
_libraries_lock = threading.Lock()


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the token is: the module (shared library), the token's label and the file holding the user PIN."""

    module: Path
    token_label: str
    pin_file: Path


def read_pin(pin_file: Path, what: str = "PIN file") -> str:
    """The PIN from its secret file (mode 600, trailing newline stripped); ``HsmError`` names the file only."""
    try:
        check_secret_file(pin_file, what)
        pin = pin_file.read_text(encoding="utf-8").strip()
    except ConfigError as exc:
        raise HsmError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HsmError(f"{what} {pin_file} cannot be read: {getattr(exc, 'strerror', None) or 'not text'}") from None
    if not pin:
        raise HsmError(f"{what} {pin_file} is empty")
    return pin


def _library(module: Path, *, reload: bool = False) -> Any:
    key = str(module)
    with _libraries_lock:
        lib = _libraries.get(key)
        if lib is None:
            try:
                lib = pkcs11.lib(key)
            except (PKCS11Error, RuntimeError, OSError) as exc:
                raise HsmError(f"PKCS#11 module {module} cannot be loaded: {exc}") from None
            _libraries[key] = lib
        elif reload:
            lib.reinitialize()
        return lib


def reload_module(module: Path) -> None:
    """Finalize and initialize the module again, so that it reads its configuration anew (SoftHSM2 reads
    ``SOFTHSM2_CONF`` and scans its tokens at initialization). Every open session of the module ends: tests only."""
    _library(module, reload=True)


def _ec_point_to_raw(point: bytes) -> bytes:
    """``CKA_EC_POINT`` of an Edwards key: the 32 raw bytes, usually wrapped in a DER OCTET STRING."""
    if len(point) == PUBLIC_KEY_SIZE + 2 and point[0] == 0x04 and point[1] == PUBLIC_KEY_SIZE:
        return bytes(point[2:])
    if len(point) == PUBLIC_KEY_SIZE:
        return bytes(point)
    raise HsmError("the token returned an Ed25519 public key in an unknown encoding")


class TokenKey:
    """An Ed25519 key whose private half stays in the token. It offers its public key and ``sign``: there is no way
    to get the private key's bytes through it (the token refuses them too: sensitive, not extractable)."""

    __slots__ = ("_lock", "_private", "label", "public_key")

    def __init__(self, label: str, public_key: bytes, private: Any, lock: threading.Lock) -> None:
        self.label = label
        self.public_key = public_key
        self._private = private  # a PKCS#11 object handle, not key material
        self._lock = lock

    def sign(self, message: bytes) -> bytes:
        """The token's Ed25519 signature (``CKM_EDDSA``, pure Ed25519) of ``message``."""
        try:
            with self._lock:
                signature = bytes(self._private.sign(bytes(message), mechanism=Mechanism.EDDSA))
        except PKCS11Error as exc:
            raise HsmError(f"the token refused to sign with key {self.label!r}: {type(exc).__name__}") from None
        if len(signature) != SIGNATURE_SIZE:
            raise HsmError(f"the token returned a {len(signature)}-byte signature for key {self.label!r}")
        return signature

    def attribute(self, attribute: Attribute) -> Any:
        """One attribute of the private key object as the token reports it (e.g. ``CKA_EXTRACTABLE``); a sensitive
        attribute raises ``HsmError`` (the token refuses it)."""
        try:
            with self._lock:
                return self._private[attribute]
        except PKCS11Error as exc:
            raise HsmError(f"the token refused attribute {attribute.name} of key {self.label!r}: "
                           f"{type(exc).__name__}") from None

    def __repr__(self) -> str:
        return f"TokenKey({self.label!r}, public_key={self.public_key.hex()})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("token keys are not picklable")


class Token:
    """A logged-in read-write session on one token. Close it (or use it as a context manager) when done."""

    def __init__(self, settings: Pkcs11Settings, session: Any) -> None:
        self.settings = settings
        self._session = session
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Pkcs11Settings) -> Token:
        pin = read_pin(settings.pin_file)
        lib = _library(settings.module)
        try:
            token = lib.get_token(token_label=settings.token_label)
        except NoSuchToken:
            raise HsmError(f"no token labelled {settings.token_label!r} in {settings.module}") from None
        except PKCS11Error as exc:
            raise HsmError(f"token {settings.token_label!r} cannot be found: {type(exc).__name__}") from None
        try:
            session = token.open(user_pin=pin, rw=True)
        except PKCS11Error as exc:  # wrong PIN, locked PIN, no free session, ...
            raise HsmError(f"cannot log in to token {settings.token_label!r}: {type(exc).__name__}") from None
        return cls(settings, session)

    def _find(self, label: str) -> tuple[Any, Any] | None:
        try:
            with self._lock:
                private = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS,
                                                label=label)
                public = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC_EDWARDS,
                                               label=label)
        except NoSuchKey:
            return None
        except PKCS11Error as exc:  # MultipleObjectsReturned among them
            raise HsmError(f"key {label!r} on token {self.settings.token_label!r}: {type(exc).__name__}") from None
        return private, public

    def has_key(self, label: str) -> bool:
        return self._find(label) is not None

    def key(self, label: str) -> TokenKey:
        """The Ed25519 key labelled ``label``; ``HsmError`` if the token has none."""
        found = self._find(label)
        if found is None:
            raise HsmError(f"token {self.settings.token_label!r} has no Ed25519 key labelled {label!r}")
        private, public = found
        with self._lock:
            point = bytes(public[Attribute.EC_POINT])
        return TokenKey(label, _ec_point_to_raw(point), private, self._lock)

    def generate(self, label: str) -> TokenKey:
        """A new Ed25519 key pair on the token, private half sensitive and not extractable; ``HsmError`` if a key
        with this label exists (a key is never replaced)."""
        if self.has_key(label):
            raise HsmError(f"token {self.settings.token_label!r} already has a key labelled {label!r}")
        try:
            with self._lock:
                self._session.generate_keypair(
                    KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True, label=label,
                    public_template={Attribute.EC_PARAMS: ED25519_PARAMS, Attribute.VERIFY: True},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                      Attribute.SIGN: True, Attribute.PRIVATE: True},
                )
        except PKCS11Error as exc:
            raise HsmError(f"token {self.settings.token_label!r} cannot generate key {label!r}: "
                           f"{type(exc).__name__}") from None
        return self.key(label)

    def rename(self, label: str, new_label: str) -> None:
        """Relabel both halves of a key pair (``HsmError`` if ``new_label`` is taken or ``label`` is missing)."""
        if self.has_key(new_label):
            raise HsmError(f"token {self.settings.token_label!r} already has a key labelled {new_label!r}")
        found = self._find(label)
        if found is None:
            raise HsmError(f"token {self.settings.token_label!r} has no Ed25519 key labelled {label!r}")
        try:
            with self._lock:
                for obj in found:
                    obj[Attribute.LABEL] = new_label
        except PKCS11Error as exc:
            raise HsmError(f"token {self.settings.token_label!r} cannot relabel {label!r}: "
                           f"{type(exc).__name__}") from None

    def labels(self) -> list[str]:
        """Labels of the Ed25519 private keys on the token."""
        with self._lock:
            objs = list(self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                   Attribute.KEY_TYPE: KeyType.EC_EDWARDS}))
            return sorted(str(o[Attribute.LABEL]) for o in objs)

    def close(self) -> None:
        with self._lock, contextlib.suppress(PKCS11Error):
            self._session.close()

    def __enter__(self) -> Token:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Token({self.settings.token_label!r}, module={str(self.settings.module)!r})"
