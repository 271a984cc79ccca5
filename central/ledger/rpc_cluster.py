"""The embedded ledger's JSON-RPC answers to what explorers ask about the cluster: one node that is its own leader
and has no votes, stake or snapshots. ``getIdentity`` / ``getSlotLeader`` / ``getClusterNodes`` name the node by a
key derived from the genesis hash; ``getSupply`` and ``getLargestAccounts`` count the accounts written through the
ledger (the faucet, the platform's and users' accounts; LiteSVM's built-in programs and sysvars are not counted)."""

from __future__ import annotations

import hashlib
from typing import Any

from solders.pubkey import Pubkey

from central.ledger.embedded import EmbeddedLedger
from central.ledger.rpc_params import FEATURE_SET, SOLANA_CORE_VERSION, Handler, RpcError, config, context

MAX_LARGEST = 20


def identity(ledger: EmbeddedLedger) -> Pubkey:
    return Pubkey(hashlib.sha256(b"gtx-embedded-node" + bytes(ledger.genesis_hash)).digest())


async def get_identity(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return {"identity": str(identity(ledger))}


async def get_slot_leader(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return str(identity(ledger))


async def get_cluster_nodes(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return [{"pubkey": str(identity(ledger)), "gossip": None, "tpu": None, "tpuQuic": None, "rpc": None,
             "pubsub": None, "version": SOLANA_CORE_VERSION, "featureSet": FEATURE_SET, "shredVersion": 0}]


async def get_vote_accounts(_ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return {"current": [], "delinquent": []}


async def get_max_slot(ledger: EmbeddedLedger, _params: list[Any]) -> object:
    """``getMaxRetransmitSlot`` and ``getMaxShredInsertSlot``: the current slot (one node)."""
    return ledger.slot


async def get_highest_snapshot_slot(_ledger: EmbeddedLedger, _params: list[Any]) -> object:
    raise RpcError(-32008, "No snapshot")


async def get_recent_performance_samples(_ledger: EmbeddedLedger, _params: list[Any]) -> object:
    return []


def _balances(ledger: EmbeddedLedger) -> list[tuple[Pubkey, int]]:
    out = []
    for address in ledger.known_accounts():
        acc = ledger.account(address)
        if acc is not None:
            out.append((address, acc.lamports))
    return out


async def get_supply(ledger: EmbeddedLedger, params: list[Any]) -> object:
    config(params, 0)  # commitment, excludeNonCirculatingAccountsList: the list is empty either way
    total = sum(lamports for _a, lamports in _balances(ledger))
    return {"context": context(ledger),
            "value": {"total": total, "circulating": total, "nonCirculating": 0, "nonCirculatingAccounts": []}}


async def get_largest_accounts(ledger: EmbeddedLedger, params: list[Any]) -> object:
    cfg = config(params, 0)
    if cfg.get("filter") not in (None, "circulating", "nonCirculating"):
        raise RpcError(-32602, "Invalid params: filter must be circulating or nonCirculating")
    balances = [] if cfg.get("filter") == "nonCirculating" else _balances(ledger)
    balances.sort(key=lambda b: (-b[1], bytes(b[0])))
    return {"context": context(ledger),
            "value": [{"address": str(a), "lamports": lamports} for a, lamports in balances[:MAX_LARGEST]]}


METHODS: dict[str, Handler] = {
    "getIdentity": get_identity,
    "getSlotLeader": get_slot_leader,
    "getClusterNodes": get_cluster_nodes,
    "getVoteAccounts": get_vote_accounts,
    "getMaxRetransmitSlot": get_max_slot,
    "getMaxShredInsertSlot": get_max_slot,
    "getHighestSnapshotSlot": get_highest_snapshot_slot,
    "getRecentPerformanceSamples": get_recent_performance_samples,
    "getSupply": get_supply,
    "getLargestAccounts": get_largest_accounts,
}
