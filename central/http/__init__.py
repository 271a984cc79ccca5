"""HTTP framework for central: declared routes (roles + schemas), auth, one error shape, OpenAPI generation.

Subsystems import from here::

    from central.http import ANY_USER, PUBLIC, Call, Role, RouteTable, roles
    from central.http.errors import bad_request, conflict, not_found
"""

from central.http.auth import Principal, TokenCodec
from central.http.errors import ApiError
from central.http.roles import ALL_ROLES, ANY_USER, OWNERS, PUBLIC, Access, Role, roles
from central.http.routes import Call, Route, RouteTable
from central.http.schema import ValidationError, meta

__all__ = [
    "ALL_ROLES",
    "ANY_USER",
    "OWNERS",
    "PUBLIC",
    "Access",
    "ApiError",
    "Call",
    "Principal",
    "Role",
    "Route",
    "RouteTable",
    "TokenCodec",
    "ValidationError",
    "meta",
    "roles",
]
