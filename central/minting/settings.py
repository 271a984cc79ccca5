"""The ``[minting]`` config table, parsed once into a frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from central.accounting.errors import WindowConfigError
from central.accounting.window import DEFAULT_WINDOW_MS, check_window_ms
from central.errors import ConfigError


@dataclass(frozen=True)
class MintingSettings:
    #: Run accounting and minting in this process (every process may; they coordinate through PostgreSQL).
    enabled: bool = True
    #: Accounting window length (must divide a UTC day).
    window_ms: int = DEFAULT_WINDOW_MS
    #: How often to look for newly final windows.
    accounting_interval_s: float = 5.0
    #: Meters settled per accounting pass.
    accounting_batch: int = 2000
    #: Accounting windows finalised per accounting pass at most (bounds one pass's transaction; a backlog is caught
    #: up by the following passes from the checkpoints).
    accounting_max_windows: int = 10_000
    #: Mint intents claimed per outbox round.
    mint_batch: int = 4000
    #: How long intents of owners without a wallet wait before they are looked at again (linking releases them).
    accrual_recheck_s: float = 300.0

    def __post_init__(self) -> None:
        try:
            check_window_ms(self.window_ms)
        except WindowConfigError as exc:
            raise ConfigError(f"minting.window_ms: {exc}") from exc
        if not 0.05 <= self.accounting_interval_s <= 3600:
            raise ConfigError("minting.accounting_interval_s must be 0.05..3600")
        if not 1 <= self.accounting_batch <= 100_000:
            raise ConfigError("minting.accounting_batch must be 1..100000")
        if not 1 <= self.accounting_max_windows <= 1_000_000:
            raise ConfigError("minting.accounting_max_windows must be 1..1000000")
        if not 1 <= self.mint_batch <= 100_000:
            raise ConfigError("minting.mint_batch must be 1..100000")
        if not 1 <= self.accrual_recheck_s <= 86_400:
            raise ConfigError("minting.accrual_recheck_s must be 1..86400")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> MintingSettings:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key not in known:
                raise ConfigError(f"unknown setting minting.{key}")
            default = getattr(cls(), key)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            else:
                ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok:
                raise ConfigError(f"minting.{key} must be {type(default).__name__}")
            values[key] = float(value) if isinstance(default, float) else value
        return cls(**values)
