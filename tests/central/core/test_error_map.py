"""The one translation of domain errors to HTTP (``central.http.errors.map_error``) and the ``ErrorMap`` of every
subsystem that declares one."""

from __future__ import annotations

import pytest

from central.certificates.routes import ERRORS as CERTIFICATE_ERRORS
from central.errors import CentralError
from central.http.errors import ErrorMap, ErrorRule, map_error
from central.identity import errors as identity_errors
from central.identity.http_errors import ERRORS as IDENTITY_ERRORS
from central.ledger.routes import ERRORS as LEDGER_ERRORS
from central.market.routes import ERRORS as MARKET_ERRORS
from central.wallets.routes import ERRORS as WALLET_ERRORS


class RootError(CentralError):
    pass


class ChildError(RootError):
    pass


class LimitedError(RootError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


TABLE: ErrorMap = {
    RootError: ErrorRule(400, "root"),
    ChildError: ErrorRule(409, "child"),
    LimitedError: ErrorRule(429, "limited", retry_after_s=60),
}


def test_the_most_specific_mapped_class_wins() -> None:
    api = map_error(ChildError("taken"), TABLE)
    assert api is not None
    assert (api.status, api.code, api.message, api.headers) == (409, "child", "taken", {})
    class GrandchildError(ChildError):
        pass
    api = map_error(GrandchildError("also taken"), TABLE)
    assert api is not None
    assert api.code == "child"
    assert map_error(CentralError("elsewhere"), TABLE) is None
    assert map_error(ValueError("not ours"), TABLE) is None


def test_headers_and_fixed_messages() -> None:
    api = map_error(LimitedError("slow down", 7), TABLE)
    assert api is not None
    assert api.headers == {"Retry-After": "7"}
    api = map_error(RootError("x"), {RootError: ErrorRule(401, "who", "authentication required")})
    assert api is not None
    assert api.message == "authentication required"
    assert api.headers["WWW-Authenticate"].startswith("Bearer")
    api = map_error(RootError("x"), {RootError: ErrorRule(429, "limited", retry_after_s=600)})
    assert api is not None
    assert api.headers == {"Retry-After": "600"}


@pytest.mark.parametrize("table", [IDENTITY_ERRORS, MARKET_ERRORS, CERTIFICATE_ERRORS, WALLET_ERRORS, LEDGER_ERRORS])
def test_declared_maps_are_sane(table: ErrorMap) -> None:
    for cls, rule in table.items():
        assert issubclass(cls, CentralError), cls
        assert 400 <= rule.status <= 599, cls
        assert rule.code.isidentifier(), cls


def test_every_identity_error_answers_with_a_client_status() -> None:
    """Each error identity raises on purpose is mapped (none becomes an anonymous 500) — except MailError, which a
    service swallows and logs (the caller's answer must not reveal a mail outage)."""
    leaves = [c for c in vars(identity_errors).values()
              if isinstance(c, type) and issubclass(c, identity_errors.IdentityError)
              and c not in (identity_errors.IdentityError, identity_errors.MailError)]
    for cls in leaves:
        assert any(issubclass(cls, mapped) for mapped in IDENTITY_ERRORS), cls
