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
rpc_url = ""                     # rpc: cluster URL (this or rpc_urls required)
rpc_urls = []                    # rpc: more URLs of the same cluster for failover, in order of preference
rpc_retry_after_ms = 5000        # rpc failover: a provider that failed is skipped this long
rpc_health_interval_ms = 2000    # rpc failover: health check of every provider (block height)
rpc_max_lag_slots = 150          # rpc failover: a provider this far behind the best one is not used
commitment = "confirmed"         # rpc
keys_dir = "var/keys"            # mint_authority.json, fee_payer.json, escrow_authority.json, treasury.json
create_keys = false              # development: generate missing key files (mode 0600)
energy_mint = ""                 # optional: use this existing mint instead of the derived one
quote_mint = ""                  # rpc: required (the payment token on that cluster); embedded: created
min_fee_payer_lamports = 1000000000   # init refuses (rpc) / tops up by airdrop (embedded) below this
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from solders.pubkey import Pubkey

from gtxconfig import Invalid, Range

_U64 = Range(1, 2**64 - 1)


@dataclass(frozen=True)
class LedgerConfig:
    backend: Literal["embedded", "rpc"] = "embedded"
    data_dir: Path = Path("var/ledger")
    slot_ms: Annotated[int, Range(0)] = 400
    fsync_interval_ms: Annotated[int, Range(0)] = 50
    serve_rpc: bool = True
    rpc_host: str = "127.0.0.1"
    #: 0 = any free port
    rpc_port: Annotated[int, Range(0, 65535)] = 8899
    rpc_airdrop: bool = False
    rpc_airdrop_max_lamports: Annotated[int, _U64] = 100 * 10**9
    rpc_airdrop_lamports_per_address: Annotated[int, _U64] = 1_000 * 10**9
    rpc_airdrops_per_hour: Annotated[int, Range(1, 1_000_000)] = 1_000
    rpc_max_batch: Annotated[int, Range(1, 10_000)] = 100
    rpc_max_body_bytes: Annotated[int, Range(1024, 64 * 1024 * 1024)] = 512 * 1024
    rpc_url: str = ""
    rpc_urls: tuple[str, ...] = ()
    rpc_retry_after_ms: Annotated[int, Range(0, 3_600_000)] = 5000
    rpc_health_interval_ms: Annotated[int, Range(100, 3_600_000)] = 2000
    rpc_max_lag_slots: Annotated[int, Range(1)] = 150
    commitment: Literal["processed", "confirmed", "finalized"] = "confirmed"
    keys_dir: Path = Path("var/keys")
    create_keys: bool = False
    energy_mint: str = ""
    quote_mint: str = ""
    min_fee_payer_lamports: Annotated[int, Range(0)] = 10**9

    def __post_init__(self) -> None:
        for name in ("energy_mint", "quote_mint"):
            value = getattr(self, name)
            if value:
                try:
                    Pubkey.from_string(value)
                except ValueError:
                    raise Invalid(name, "is not a base-58 public key") from None
        for url in self.rpc_urls:
            if not url.startswith(("http://", "https://")):
                raise Invalid("rpc_urls", "must hold http(s) URLs")
        if self.backend == "rpc":
            if not self.rpc_url.startswith(("http://", "https://")) and not self.rpc_urls:
                raise Invalid("rpc_url", "must be an http(s) URL when ledger.backend = \"rpc\" (or set rpc_urls)")
            if self.rpc_url and not self.rpc_url.startswith(("http://", "https://")):
                raise Invalid("rpc_url", "must be an http(s) URL")
            if not self.quote_mint:
                raise Invalid("quote_mint", "is required when ledger.backend = \"rpc\"")

    @property
    def provider_urls(self) -> tuple[str, ...]:
        """Every RPC provider of the rpc backend, in order of preference (``rpc_url`` first), without repeats."""
        return tuple(dict.fromkeys(u for u in (self.rpc_url, *self.rpc_urls) if u))
