"""The certificates subsystem's exceptions (all derive from ``CentralError``)."""

from __future__ import annotations

from central.errors import CentralError


class CertificateError(CentralError):
    """Base of every error the certificates subsystem raises on purpose."""


class InvalidCertificateError(CertificateError):
    """Certificate data (metadata fields, account bytes, request fields) is malformed."""


class InsufficientGenerationError(CertificateError):
    """The requested period holds less uncertified verified renewable export than asked for (or none)."""


class AlreadyCertifiedError(CertificateError):
    """Some of the requested windows are already covered by another certificate."""


class CertificateNotFoundError(CertificateError):
    """No certificate with that id or mint."""


class CertificateStateError(CertificateError):
    """The operation is not allowed in the certificate's current state (expired, revoked, not issued yet)."""


class NotOwnerError(CertificateError):
    """The caller does not hold (enough of) the certificate."""


class ChainError(CertificateError):
    """A transaction was refused by the ledger or the chain state is not what it must be."""


class TooManyWaitingError(CertificateError):
    """The user already has the most transfer/retirement requests waiting for their wallet's signature."""
