"""The ``[minting]`` config table, parsed once into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from central.accounting.errors import WindowConfigError
from central.accounting.window import DEFAULT_WINDOW_MS, check_window_ms
from gtxconfig import Invalid, Range


@dataclass(frozen=True)
class MintingSettings:
    #: Run accounting and minting in this process (every process may; they coordinate through PostgreSQL).
    enabled: bool = True
    #: Accounting window length (must divide a UTC day).
    window_ms: int = DEFAULT_WINDOW_MS
    #: How often to look for newly final windows.
    accounting_interval_s: Annotated[float, Range(0.05, 3600)] = 5.0
    #: Meters settled per accounting pass.
    accounting_batch: Annotated[int, Range(1, 100_000)] = 2000
    #: Accounting windows finalised per accounting pass at most (bounds one pass's transaction; a backlog is caught
    #: up by the following passes from the checkpoints).
    accounting_max_windows: Annotated[int, Range(1, 1_000_000)] = 10_000
    #: Mint intents claimed per outbox round.
    mint_batch: Annotated[int, Range(1, 100_000)] = 4000
    #: How long intents of owners without a wallet wait before they are looked at again (linking releases them).
    accrual_recheck_s: Annotated[float, Range(1, 86_400)] = 300.0

    def __post_init__(self) -> None:
        try:
            check_window_ms(self.window_ms)
        except WindowConfigError as exc:
            raise Invalid("window_ms", str(exc)) from None
