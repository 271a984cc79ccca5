"""Bearer-token authentication: short-lived HS256 JWT access tokens carrying the user id and role.

Access tokens are verified without a database round trip (that is what keeps authenticated GETs fast); they live
``auth.access_ttl_s`` (15 minutes by default). Revocation works on the refresh tokens (``central.identity``), so a
logged-out or demoted user loses access when the current access token expires.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from uuid import UUID

import jwt

from central.config import AuthConfig
from central.http.errors import unauthorized
from central.http.roles import Role

_ALG = "HS256"
_CACHE_MAX = 50_000


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: UUID
    role: Role


class TokenCodec:
    """Issues and verifies access tokens. The key never leaves this object (not in repr, logs or errors)."""

    def __init__(self, config: AuthConfig) -> None:
        self._key = config.secret()
        self._issuer = config.issuer
        self.ttl_s = config.access_ttl_s
        # Verified tokens → (principal, expiry): a repeat request skips the HMAC and JSON work. Bounded.
        self._cache: dict[str, tuple[Principal, int]] = {}

    def __repr__(self) -> str:
        return f"TokenCodec(issuer={self._issuer!r}, ttl_s={self.ttl_s})"

    def issue(self, user_id: UUID, role: Role, *, now: float | None = None) -> tuple[str, int]:
        """Returns (token, expiry as UNIX seconds)."""
        iat = int(now if now is not None else time.time())
        exp = iat + self.ttl_s
        claims = {
            "sub": str(user_id),
            "role": role.value,
            "iss": self._issuer,
            "iat": iat,
            "exp": exp,
            "typ": "access",
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=_ALG), exp

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises the 401 ``ApiError`` otherwise."""
        hit = self._cache.get(token)
        if hit is not None:
            if hit[1] > time.time():
                return hit[0]
            del self._cache[token]
        principal, exp = self._decode(token)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (principal, exp)
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALG],
                issuer=self._issuer,
                options={"require": ["sub", "role", "exp", "iat", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("access token expired", "token_expired") from None
        except jwt.PyJWTError:
            raise unauthorized("invalid access token", "invalid_token") from None
        if claims.get("typ") != "access":
            raise unauthorized("invalid access token", "invalid_token")
        try:
            return Principal(UUID(str(claims["sub"])), Role(str(claims["role"]))), int(claims["exp"])
        except ValueError:
            raise unauthorized("invalid access token", "invalid_token") from None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
