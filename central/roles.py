"""A user's role: what identity records and checks, what tokens carry, what routes grant access to.

A plain enum at the bottom of central's layers (beside ``central.errors``), so identity's pure core and the HTTP
framework both use it without one importing the other. Route access declarations over it (``roles``, ``ANY_USER``,
...) are HTTP's, in ``central.http.roles``.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    CONSUMER = "consumer"
    PROSUMER = "prosumer"
    INSTALLER = "installer"
    REC_AUTHORITY = "rec_authority"
    ADMIN = "admin"
