"""Ed25519 keys in a PKCS#11 token (an HSM, a secure element such as the NXP SE050, or SoftHSM2 in tests), shared
by both programs: central keeps the platform's keys in one, a gateway may keep its device key in one.

Keys are generated on the token as sensitive and non-extractable, and used through ``CKM_EDDSA``: the private key
never leaves the token, and nothing here can return its bytes (``TokenKey`` has a public key and ``sign``, nothing
else). See docs/decisions/0014-keys-in-pkcs11-tokens.md.
"""

from gtxhsm.errors import HsmError
from gtxhsm.token import Pkcs11Settings, Token, TokenKey, read_pin

__all__ = ["HsmError", "Pkcs11Settings", "Token", "TokenKey", "read_pin"]
