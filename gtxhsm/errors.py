"""The one exception of the PKCS#11 package; each program maps it to its own tree at the boundary."""

from __future__ import annotations


class HsmError(Exception):
    """The token cannot be opened, a key is missing or exists already, or the token refused an operation. Messages
    name the module, token and key label, never the PIN."""
