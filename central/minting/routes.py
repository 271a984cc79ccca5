"""HTTP routes: my mints (window, Wh, signature, status); admin view of stuck or failed mints, and retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from central.chain.outbox import ChainOutbox
from central.errors import require
from central.http.errors import conflict, not_found
from central.http.roles import ANY_USER, Role, roles
from central.http.routes import Call, RouteTable
from central.http.schema import meta
from central.minting.proof import mint_proof
from central.minting.queries import MintView, mint_by_key, mints_of

routes = RouteTable(tag="minting")


@dataclass(frozen=True)
class MintsQuery:
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))
    before_start_ms: int | None = field(default=None, metadata=meta(description="page: windows before this start"))


@dataclass(frozen=True)
class MintOut:
    key: str = field(metadata=meta(description="<meter id>:<window start ms>, unique per (meter, window)"))
    meter_id: UUID
    window_start: datetime
    window_end: datetime
    window_start_ms: int
    energy_wh: int
    readings_root: str = field(metadata=meta(description="Merkle root (hex) of the signed readings used"))
    status: str = field(metadata=meta(description="accrued | pending | submitted | confirmed | failed"))
    signature: str | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class ProblemsQuery:
    stuck_after_s: int = field(default=300, metadata=meta(minimum=1, maximum=7 * 86400))
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))


@dataclass(frozen=True)
class ProblemOut:
    key: str
    state: str
    energy_wh: int
    owner_id: str
    signature: str | None
    attempts: int
    last_error: str | None


def _out(v: MintView) -> MintOut:
    return MintOut(
        v.key,
        v.meter_id,
        datetime.fromtimestamp(v.window_start_ms / 1000, UTC),
        datetime.fromtimestamp(v.window_end_ms / 1000, UTC),
        v.window_start_ms,
        v.amount_wh,
        v.readings_root,
        v.status,
        v.signature,
        v.attempts,
        v.last_error,
    )


def _outbox(call: Call[Any, Any]) -> ChainOutbox:
    return require(call.services.minting.outbox)


@routes.get(
    "/api/v1/mints",
    access=ANY_USER,
    query=MintsQuery,
    response=list[MintOut],
    summary="My energy-token mints, newest window first",
)
async def my_mints(call: Call[None, MintsQuery]) -> list[MintOut]:
    """One entry per (meter, window) with exported energy: accrued until you link a wallet, then pending, submitted
    (transaction signature known) and confirmed."""
    views = await mints_of(
        call.services.pool, call.user.user_id, limit=call.query.limit, before_start_ms=call.query.before_start_ms
    )
    return [_out(v) for v in views]


@routes.get(
    "/api/v1/admin/mints/problems",
    access=roles(Role.ADMIN),
    query=ProblemsQuery,
    response=list[ProblemOut],
    errors=(503,),
    summary="Failed mints and mints stuck pending or submitted",
    description="Accruing mints (owner has no linked wallet yet) are not listed.",
)
async def mint_problems(call: Call[None, ProblemsQuery]) -> list[ProblemOut]:
    views = await _outbox(call).problems(stuck_after_seconds=call.query.stuck_after_s, limit=call.query.limit)
    # pending intents of owners without a wallet are accruing by design, not stuck
    owners = sorted({UUID(str(v.payload["owner"])) for v in views if v.state == "pending"})
    with_wallet = {
        r["user_id"]
        for r in await call.services.pool.fetch("SELECT user_id FROM wallets WHERE user_id = ANY($1::uuid[])", owners)
    }
    views = [v for v in views if v.state != "pending" or UUID(str(v.payload["owner"])) in with_wallet]
    return [
        ProblemOut(v.key, v.state, int(v.payload["wh"]), str(v.payload["owner"]), v.signature, v.attempts, v.last_error)
        for v in views
    ]


@routes.post(
    "/api/v1/admin/mints/{key}/retry",
    access=roles(Role.ADMIN),
    response=MintOut,
    errors=(404, 409, 503),
    summary="Retry a failed mint",
)
async def retry_mint(call: Call[None, None]) -> MintOut:
    key = call.path("key")
    view = await mint_by_key(call.services.pool, key)
    if view is None:
        raise not_found("no such mint", "no_mint")
    if await _outbox(call).retry_failed([key]) != 1:
        raise conflict(f"mint {key} is {view.status}; only failed mints can be retried", "not_failed")
    again = await mint_by_key(call.services.pool, key)
    assert again is not None
    return _out(again)


@dataclass(frozen=True)
class ProofStep:
    sibling_is_left: bool
    sibling: str


@dataclass(frozen=True)
class MintProofOut:
    key: str
    meter_id: UUID
    window_start_ms: int
    window_end_ms: int
    energy_wh: int
    record_hashes: list[str] = field(metadata=meta(description="SHA-256 of each signed record used, in order (hex)"))
    window_root: str = field(metadata=meta(description="Merkle root of record_hashes (leaf 0x00, node 0x01)"))
    mint_leaf: str = field(metadata=meta(description="SHA-256 of GTX/mint/v1 || meter || start || end || Wh || root"))
    path: list[ProofStep] = field(metadata=meta(description="audit path from mint_leaf to tx_root"))
    tx_root: str = field(metadata=meta(description="the root in the transaction's memo (gtx:mint:v1 ... root=)"))
    signature: str | None
    status: str
    records: list[str] = field(
        default_factory=list,
        metadata=meta(description="the signed records (hex, protocol v1 reading records) behind record_hashes, in "
                      "order; hot or from the archive"),
    )


@routes.get(
    "/api/v1/mints/{key}/proof",
    access=ANY_USER,
    response=MintProofOut,
    errors=(404,),
    summary="Proof of a mint: signed readings -> window root -> mint leaf -> the memo root on chain",
)
async def mint_proof_route(call: Call[None, None]) -> MintProofOut:
    """Owners see their own mints' proofs, admins any."""
    proof = await mint_proof(call.services.pool, call.path("key"), call.services.archive.reader)
    if proof is None or (proof.owner_id != call.user.user_id and call.user.role != Role.ADMIN):
        raise not_found("no such mint", "no_mint")
    return MintProofOut(
        proof.key,
        proof.meter_id,
        proof.window_start_ms,
        proof.window_end_ms,
        proof.energy_wh,
        [h.hex() for h in proof.record_hashes],
        proof.window_root.hex(),
        proof.leaf.hex(),
        [ProofStep(left, sib.hex()) for left, sib in proof.path],
        proof.tx_root.hex(),
        proof.signature,
        proof.status,
        [r.hex() for r in proof.records],
    )
