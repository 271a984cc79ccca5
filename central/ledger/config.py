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
rpc_ws_port = 8900               # PubSub websocket here too (web3.js looks at rpc_port + 1); 0 = only on rpc_port
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
key_store = "file"               # or "pkcs11": platform keys in an HSM (docs/operations.md, "Keys and the HSM")

[ledger.hsm]                     # key_store = "pkcs11" only
module = "/usr/lib/softhsm/libsofthsm2.so"   # the token's PKCS#11 module
token_label = "gridtokenx"
pin_file = "/etc/gridtokenx/hsm.pin"         # the user PIN; a secret file (chmod 600)
label_prefix = "gtx"             # key labels: gtx-mint_authority, gtx-fee_payer, gtx-escrow_authority, ...
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from solders.pubkey import Pubkey

from gtxconfig import Invalid, Match, Range

_U64 = Range(1, 2**64 - 1)


@dataclass(frozen=True)
class HsmConfig:
    """``[ledger.hsm]``: the PKCS#11 token that holds the platform's keys when ``ledger.key_store = "pkcs11"``."""

    module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    token_label: str = "gridtokenx"  # noqa: S105 - a token's name, not a secret
    #: the user PIN, in a secret file (mode 600); never inline
    pin_file: Path = Path()
    #: each role's key is labelled ``<label_prefix>-<role>`` (``gtx-fee_payer``, ...)
    label_prefix: Annotated[str, Match(r"[A-Za-z0-9_.-]{1,32}", "1..32 letters, digits, _ . -")] = "gtx"

    def label(self, name: str) -> str:
        return f"{self.label_prefix}-{name}"


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
    #: The PubSub websocket is served on ``rpc_port`` and, best effort, here too (where web3.js looks by default:
    #: ``rpc_port + 1``); 0 = only on ``rpc_port``. Not served here when ``rpc_port`` is 0 (any free port).
    rpc_ws_port: Annotated[int, Range(0, 65535)] = 8900
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
    #: where the platform's keys live: ``file`` (``keys_dir``, development) or ``pkcs11`` (``[ledger.hsm]``)
    key_store: Literal["file", "pkcs11"] = "file"
    hsm: HsmConfig = field(default_factory=HsmConfig)

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
        if self.key_store == "pkcs11" and self.hsm.pin_file == Path():
            raise Invalid("hsm", "pin_file must be set when ledger.key_store = \"pkcs11\"")

    @property
    def provider_urls(self) -> tuple[str, ...]:
        """Every RPC provider of the rpc backend, in order of preference (``rpc_url`` first), without repeats."""
        return tuple(dict.fromkeys(u for u in (self.rpc_url, *self.rpc_urls) if u))
