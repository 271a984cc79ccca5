"""The protocol's one exception tree. Every decoder returns a typed value or raises a ``ProtocolError`` carrying a
reason code from protocol §4 Ack; none returns partial data."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Rejection reasons, as they travel in acks (protocol §4 Ack)."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_NOT_VERIFIED = "device_not_verified"
    METER_NOT_BOUND = "meter_not_bound"
    CHAIN_MISMATCH = "chain_mismatch"
    BAD_TIMESTAMP = "bad_timestamp"
    REGISTER_DECREASE = "register_decrease"
    BAD_FLAGS = "bad_flags"


class ProtocolError(ValueError):
    """Base of every protocol error. ``reason`` is the §4 (Ack) code a receiver reports."""

    reason: Reason = Reason.MALFORMED

    def __init__(self, message: str, reason: Reason | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class MalformedError(ProtocolError):
    """Bytes or JSON that do not follow the layout (magic, version, lengths, ranges, characters)."""

    reason = Reason.MALFORMED


class BadSignatureError(ProtocolError):
    """A signature that does not verify under the claimed public key."""

    reason = Reason.BAD_SIGNATURE


class BadFlagsError(ProtocolError):
    """Reserved flag bits set in a reading record."""

    reason = Reason.BAD_FLAGS
