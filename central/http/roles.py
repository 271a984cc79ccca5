"""Per-route access declarations over the roles (the ``Role`` enum itself is ``central.roles``, re-exported here for
route modules)."""

from __future__ import annotations

from dataclasses import dataclass

from central.roles import Role

__all__ = ["ALL_ROLES", "ANY_USER", "OWNERS", "PUBLIC", "Access", "Role", "roles"]


ALL_ROLES: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True)
class Access:
    """Who may call a route: nobody needs to log in (``public``), or a logged-in user with one of ``roles``."""

    public: bool = False
    roles: frozenset[Role] = frozenset()

    def __post_init__(self) -> None:
        if self.public == bool(self.roles):
            raise ValueError("Access is either public or lists at least one role")

    def allows(self, role: Role | None) -> bool:
        return self.public or (role is not None and role in self.roles)

    def describe(self) -> str:
        return "public" if self.public else ", ".join(sorted(r.value for r in self.roles))


#: No login needed.
PUBLIC = Access(public=True)
#: Any logged-in user.
ANY_USER = Access(roles=ALL_ROLES)
#: Users who own meters and trade.
OWNERS = Access(roles=frozenset({Role.CONSUMER, Role.PROSUMER}))


def roles(*allowed: Role) -> Access:
    """Access for logged-in users with one of ``allowed``."""
    return Access(roles=frozenset(allowed))
