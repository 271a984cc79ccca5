"""Platform keys in a PKCS#11 token (``ledger.key_store = "pkcs11"``): ``HsmKey`` holds a token key handle and asks
the token for every signature (``CKM_EDDSA``). It has no method, property or field that returns private key bytes,
and the token refuses them too: keys are generated there sensitive and non-extractable (``gtxhsm``).

The token is opened lazily by the key store (``central.ledger.keystore``), so loading this module needs
python-pkcs11 only when the PKCS#11 store is configured.
"""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger.errors import KeyStoreError
from central.ledger.keys import PlatformKey
from gtxhsm import HsmError, TokenKey


class HsmKey(PlatformKey):
    """A platform key whose private half never leaves the token."""

    __slots__ = ("_key",)

    def __init__(self, name: str, key: TokenKey) -> None:
        super().__init__(name, Pubkey.from_bytes(key.public_key))
        self._key = key

    @property
    def label(self) -> str:
        return self._key.label

    def sign_message(self, message: bytes) -> Signature:
        try:
            return Signature.from_bytes(self._key.sign(message))
        except HsmError as exc:
            raise KeyStoreError(str(exc)) from None
