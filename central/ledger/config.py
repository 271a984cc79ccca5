"""``[ledger]`` configuration, validated once into a frozen dataclass.

```toml
[ledger]
backend = "embedded"             # or "rpc"
data_dir = "var/ledger"          # embedded: log + faucet key
slot_ms = 400                    # embedded: block time
fsync_interval_ms = 50           # embedded: group-commit interval (0 = fsync every transaction)
serve_rpc = true                 # embedded: serve Solana JSON-RPC (a development tool; keep it on loopback)
rpc_host = "127.0.0.1"
rpc_port = 8899                  # 0 = any free port
rpc_airdrop = false              # development only: serve requestAirdrop, within the caps below
rpc_airdrop_max_lamports = 100000000000           # per call (100 SOL)
rpc_airdrop_lamports_per_address = 1000000000000  # per address per hour
rpc_airdrops_per_hour = 1000                      # all addresses together
rpc_max_batch = 100              # requests per JSON-RPC batch
rpc_max_body_bytes = 524288      # bytes per request body
rpc_url = ""                     # rpc: cluster URL (required)
commitment = "confirmed"         # rpc
keys_dir = "var/keys"            # mint_authority.json, fee_payer.json, escrow_authority.json, treasury.json
create_keys = false              # development: generate missing key files (mode 0600)
energy_mint = ""                 # optional: use this existing mint instead of the derived one
quote_mint = ""                  # rpc: required (the payment token on that cluster); embedded: created
min_fee_payer_lamports = 1000000000   # init refuses (rpc) / tops up by airdrop (embedded) below this
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey

from central.errors import ConfigError

BACKENDS = ("embedded", "rpc")
COMMITMENTS = ("processed", "confirmed", "finalized")


@dataclass(frozen=True)
class LedgerConfig:
    backend: str = "embedded"
    data_dir: Path = Path("var/ledger")
    slot_ms: int = 400
    fsync_interval_ms: int = 50
    serve_rpc: bool = True
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8899
    rpc_airdrop: bool = False
    rpc_airdrop_max_lamports: int = 100 * 10**9
    rpc_airdrop_lamports_per_address: int = 1_000 * 10**9
    rpc_airdrops_per_hour: int = 1_000
    rpc_max_batch: int = 100
    rpc_max_body_bytes: int = 512 * 1024
    rpc_url: str = ""
    commitment: str = "confirmed"
    keys_dir: Path = Path("var/keys")
    create_keys: bool = False
    energy_mint: str = ""
    quote_mint: str = ""
    min_fee_payer_lamports: int = 10**9

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"ledger.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.slot_ms < 0:
            raise ConfigError("ledger.slot_ms must be >= 0")
        if self.fsync_interval_ms < 0:
            raise ConfigError("ledger.fsync_interval_ms must be >= 0")
        if not 0 <= self.rpc_port <= 65535:
            raise ConfigError("ledger.rpc_port must be a TCP port (0 = any free port)")
        self._check_rpc_limits()
        if self.commitment not in COMMITMENTS:
            raise ConfigError(f"ledger.commitment must be one of {', '.join(COMMITMENTS)}")
        if self.min_fee_payer_lamports < 0:
            raise ConfigError("ledger.min_fee_payer_lamports must be >= 0")
        for name in ("energy_mint", "quote_mint"):
            value = getattr(self, name)
            if value:
                try:
                    Pubkey.from_string(value)
                except ValueError:
                    raise ConfigError(f"ledger.{name} is not a base-58 public key") from None
        if self.backend == "rpc":
            if not self.rpc_url.startswith(("http://", "https://")):
                raise ConfigError("ledger.rpc_url must be an http(s) URL when ledger.backend = \"rpc\"")
            if not self.quote_mint:
                raise ConfigError("ledger.quote_mint is required when ledger.backend = \"rpc\"")

    def _check_rpc_limits(self) -> None:
        ranges = {"rpc_airdrop_max_lamports": (1, 2**64 - 1), "rpc_airdrop_lamports_per_address": (1, 2**64 - 1),
                  "rpc_airdrops_per_hour": (1, 1_000_000), "rpc_max_batch": (1, 10_000),
                  "rpc_max_body_bytes": (1024, 64 * 1024 * 1024)}
        for name, (lo, hi) in ranges.items():
            if not lo <= getattr(self, name) <= hi:
                raise ConfigError(f"ledger.{name} must be {lo}..{hi}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> LedgerConfig:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key not in known:
                raise ConfigError(f"unknown setting ledger.{key}")
            default = known[key].default
            if isinstance(default, Path):
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"ledger.{key} must be a non-empty path string")
                values[key] = Path(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"ledger.{key} must be true or false")
                values[key] = value
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"ledger.{key} must be an integer")
                values[key] = value
            else:
                if not isinstance(value, str):
                    raise ConfigError(f"ledger.{key} must be a string")
                values[key] = value
        return cls(**values)
