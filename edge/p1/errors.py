"""The P1 codec's exceptions: each names what was wrong with one telegram (never a key, never the payload)."""

from __future__ import annotations

from edge.errors import EdgeError


class P1Error(EdgeError):
    """A telegram that cannot become a reading."""


class CrcError(P1Error):
    """The telegram's CRC16 does not match its content: dropped and counted."""


class TruncatedError(P1Error):
    """A telegram that stopped before its end (a new one started, or the frame is too short)."""


class DecryptError(P1Error):
    """An encrypted telegram whose authentication tag does not verify: wrong key, or a damaged frame."""


class TelegramError(P1Error):
    """A telegram that parses but lacks a register the meter map needs, or carries a wrong unit."""
