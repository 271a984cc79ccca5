"""Bearer-token authentication: short-lived HS256 JWT access tokens carrying the user id and role.

Access tokens are verified without a database round trip (that is what keeps authenticated GETs fast); they live
``auth.access_ttl_s`` (15 minutes by default). Revocation works on the refresh tokens (``central.identity``), so a
logged-out or demoted user loses HTTP access when the current access token expires. Long-lived connections (the live
WebSocket) are different: ``central.identity`` announces every revocation on the PostgreSQL channel
``SESSIONS_CHANNEL`` (payload: :class:`Revocation` as JSON) and the sockets of that session/user are closed at once;
a token carries its session (``sid``: the refresh-token family of its login) so a logout ends only that login.
"""

from __future__ import annotations

import json
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
#: PostgreSQL NOTIFY channel on which session revocations are announced to every central process.
SESSIONS_CHANNEL = "gtx_sessions"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: UUID
    role: Role


@dataclass(frozen=True)
class TokenInfo:
    """A verified access token in full: who, until when (UNIX seconds), and which login (``None``: no ``sid``)."""

    user_id: UUID
    role: Role
    expires_at: int
    session: UUID | None


@dataclass(frozen=True)
class Revocation:
    """``kind`` ``revoked``: the session ``session`` (or, when ``None``, every session) of ``user`` ended (logout,
    password change or reset, refresh-token reuse); ``role``: the user's role is now ``role``."""

    kind: str
    user: UUID
    session: UUID | None = None
    role: str | None = None

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "user": str(self.user),
                           "session": None if self.session is None else str(self.session), "role": self.role})

    @staticmethod
    def from_json(text: str) -> Revocation:
        data = json.loads(text)
        session = data.get("session")
        return Revocation(str(data["kind"]), UUID(str(data["user"])), None if session is None else UUID(str(session)),
                          data.get("role"))


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

    def issue(self, user_id: UUID, role: Role, *, now: float | None = None,
              session: UUID | None = None) -> tuple[str, int]:
        """Returns (token, expiry as UNIX seconds). ``session``: the login (refresh-token family) it belongs to."""
        iat = int(now if now is not None else time.time())
        exp = iat + self.ttl_s
        claims: dict[str, object] = {
            "sub": str(user_id),
            "role": role.value,
            "iss": self._issuer,
            "iat": iat,
            "exp": exp,
            "typ": "access",
            "jti": uuid.uuid4().hex,
        }
        if session is not None:
            claims["sid"] = str(session)
        return jwt.encode(claims, self._key, algorithm=_ALG), exp

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises the 401 ``ApiError`` otherwise."""
        hit = self._cache.get(token)
        if hit is not None:
            if hit[1] > time.time():
                return hit[0]
            del self._cache[token]
        principal, exp, _ = self._decode(token)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (principal, exp)
        return principal

    def inspect(self, token: str) -> TokenInfo:
        """Like :meth:`verify`, with the expiry and session (for connections that outlive a request)."""
        principal, exp, session = self._decode(token)
        return TokenInfo(principal.user_id, principal.role, exp, session)

    def _decode(self, token: str) -> tuple[Principal, int, UUID | None]:
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
            sid = claims.get("sid")
            return (Principal(UUID(str(claims["sub"])), Role(str(claims["role"]))), int(claims["exp"]),
                    None if sid is None else UUID(str(sid)))
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
