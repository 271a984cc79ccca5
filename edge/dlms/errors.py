"""DLMS/COSEM errors. They are ``MeterError``s: a DLMS meter that fails to answer produces no reading."""

from __future__ import annotations

from edge.errors import MeterError


class DlmsError(MeterError):
    """Any DLMS/COSEM failure (transport, framing, association, access)."""


class DlmsDecodeError(DlmsError):
    """Bytes from the meter do not form a valid frame, APDU or Data."""


class AssociationRejectedError(DlmsError):
    """The meter refused the association (AARE result != accepted), e.g. a wrong LLS password."""

    def __init__(self, result: int, diagnostic: int) -> None:
        self.result, self.diagnostic = result, diagnostic
        reasons = {
            1: "no reason given",
            2: "application context name not supported",
            11: "authentication mechanism name not recognised",
            12: "authentication mechanism name required",
            13: "authentication failure",
            14: "authentication required",
        }
        reason = reasons.get(diagnostic, f"diagnostic {diagnostic}")
        super().__init__(f"association rejected (result {result}): {reason}")


class DataAccessError(DlmsError):
    """A GET returned a data-access-result instead of data (object undefined, read denied, ...)."""

    def __init__(self, code: int) -> None:
        self.code = code
        name = {1: "hardware fault", 2: "temporary failure", 3: "read-write denied", 4: "object undefined",
                9: "object class inconsistent", 11: "object unavailable", 12: "type unmatched",
                13: "scope of access violated", 14: "data block unavailable", 250: "other reason"}.get(code, "error")
        super().__init__(f"data access result {code} ({name})")


class CounterRejectedError(DlmsError):
    """The meter refused our invocation (frame) counter as already used: re-synchronise it and try once more."""
