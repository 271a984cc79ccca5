"""Public validation: read the certificate from the chain (mint, supply, metadata, holders' freeze state), decide
whether it is authentic and valid, and compare it with the database.

Authenticity needs no database: a certificate's mint address is derived from the issuer's public key and the
certificate id (``create_with_seed``), so an account at the derived address can only have been created by the
issuer, and the mint's metadata names the id it must derive from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from solders.pubkey import Pubkey

from central.certificates import instructions
from central.certificates.accounts import MintInfo
from central.certificates.errors import CertificateNotFoundError, InvalidCertificateError
from central.certificates.metadata import KEY_REVOCATION_REASON, KEY_STATUS, STATUS_REVOKED, SYMBOL, CertificateMetadata
from central.certificates.models import CertificateRecord, Status
from central.certificates.operations import CertificateLedger, Holding
from central.certificates.store import CertificateStore


@dataclass(frozen=True)
class ValidationReport:
    mint: str
    certificate_id: UUID | None = None
    exists_on_chain: bool = False
    authentic: bool = False
    status: str = "not_found"  # active | revoked | expired | invalid | not_found
    valid: bool = False  # authentic, not revoked, not expired
    certified_wh: int | None = None
    supply_wh: int | None = None
    retired_wh: int | None = None
    holder_accounts: int = 0
    frozen_accounts: int = 0
    expires_at: datetime | None = None
    revocation_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    db_found: bool = False
    db_agrees: bool = False
    mismatches: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["certificate_id"] = None if self.certificate_id is None else str(self.certificate_id)
        out["expires_at"] = None if self.expires_at is None else self.expires_at.isoformat()
        out["problems"], out["mismatches"] = list(self.problems), list(self.mismatches)
        return out


def authenticity(issuer: Pubkey, mint: Pubkey, info: MintInfo,
                  past_issuers: Sequence[Pubkey] = ()) -> tuple[CertificateMetadata | None, list[str]]:
    problems: list[str] = []
    if info.metadata is None:
        return None, ["mint carries no token metadata"]
    try:
        meta = CertificateMetadata.from_fields(info.metadata.additional)
    except InvalidCertificateError as exc:
        return None, [f"metadata is not a certificate: {exc}"]
    # a certificate issued before a rotation of the issuer's key keeps the address derived from the key of the day
    if all(instructions.mint_address(k, meta.certificate_id) != mint for k in (issuer, *past_issuers)):
        problems.append("mint address is not the issuer's address for this certificate id")
    if info.mint_authority is not None:
        problems.append("mint authority not dropped: supply is not fixed")
    if info.freeze_authority != issuer or info.metadata.update_authority != issuer:
        problems.append("freeze or metadata authority is not the issuer")
    if info.decimals != instructions.DECIMALS or info.metadata_pointer != mint or info.metadata.mint != mint:
        problems.append("decimals or metadata pointer are not those of a certificate")
    if info.metadata.symbol != SYMBOL:
        problems.append("wrong symbol")
    if info.supply > meta.energy_wh:
        problems.append("supply exceeds the certified energy")
    return meta, problems


class CertificateValidator:
    def __init__(self, chain_ops: CertificateLedger, store: CertificateStore, clock: Callable[[], datetime]) -> None:
        self.chain = chain_ops
        self.store = store
        self.clock = clock

    async def by_id(self, certificate_id: UUID) -> ValidationReport:
        mint = self.chain.mint_address_for(certificate_id)
        if self.chain.past_issuers and await self.chain.read_mint(mint) is None:
            for past in reversed(self.chain.past_issuers):  # issued before the issuer's key was rotated
                earlier = instructions.mint_address(past, certificate_id)
                if await self.chain.read_mint(earlier) is not None:
                    mint = earlier
                    break
        return await self.by_mint(str(mint), certificate_id)

    async def by_mint(self, mint_text: str, certificate_id: UUID | None = None) -> ValidationReport:
        try:
            mint = Pubkey.from_string(mint_text)
        except ValueError as exc:
            raise InvalidCertificateError("not a mint address") from exc
        try:
            info = await self.chain.read_mint(mint)
        except InvalidCertificateError as exc:
            return ValidationReport(mint_text, certificate_id, True, status="invalid", problems=(str(exc),))
        if info is None:
            report = ValidationReport(mint_text, certificate_id)
            return await self._with_db(report, await self._record(certificate_id, mint_text), [])
        meta, problems = authenticity(self.chain.issuer, mint, info, self.chain.past_issuers)
        record = await self._record(meta.certificate_id if meta else certificate_id, mint_text)
        wallets = (
            [] if record is None else [record.owner_wallet, *(h.wallet for h in await self.store.holdings(record.id))]
        )
        holdings = await self.chain.holdings(mint, [Pubkey.from_string(w) for w in wallets])
        extra = dict(info.metadata.additional) if info.metadata else {}
        revoked = extra.get(KEY_STATUS) == STATUS_REVOKED
        now = self.clock()
        expired = meta is not None and now >= meta.expiry_date
        authentic = meta is not None and not problems
        status = "invalid" if not authentic else "revoked" if revoked else "expired" if expired else "active"
        report = ValidationReport(
            mint=mint_text,
            certificate_id=meta.certificate_id if meta else certificate_id,
            exists_on_chain=True,
            authentic=authentic,
            status=status,
            valid=status == "active",
            certified_wh=meta.energy_wh if meta else None,
            supply_wh=info.supply,
            retired_wh=meta.energy_wh - info.supply if meta else None,
            holder_accounts=sum(1 for h in holdings if h.account.amount > 0),
            frozen_accounts=sum(1 for h in holdings if h.account.frozen),
            expires_at=meta.expiry_date if meta else None,
            revocation_reason=extra.get(KEY_REVOCATION_REASON),
            metadata={"name": info.metadata.name, "symbol": info.metadata.symbol, "uri": info.metadata.uri, **extra}
            if info.metadata
            else {},
            problems=tuple(problems),
        )
        return await self._with_db(report, record, holdings, meta)

    async def _record(self, certificate_id: UUID | None, mint: str) -> CertificateRecord | None:
        try:
            if certificate_id is not None:
                return await self.store.get(certificate_id)
            return await self.store.get_by_mint(mint)
        except CertificateNotFoundError:
            return None

    async def _with_db(
        self,
        report: ValidationReport,
        record: CertificateRecord | None,
        holdings: list[Holding],
        meta: CertificateMetadata | None = None,
    ) -> ValidationReport:
        if record is None:
            return replace(report, db_found=False, db_agrees=False, mismatches=("not in the database",))
        mismatches = await self._compare(record, report, holdings, meta)
        return replace(report, db_found=True, db_agrees=not mismatches, mismatches=tuple(mismatches))

    async def _compare(
        self,
        record: CertificateRecord,
        report: ValidationReport,
        holdings: list[Holding],
        meta: CertificateMetadata | None,
    ) -> list[str]:
        out: list[str] = []
        if not report.exists_on_chain:
            return ["the database has the certificate but the chain has no mint"]
        if record.mint != report.mint:
            out.append(f"mint: database {record.mint}")
        if meta is not None and record.metadata() != meta:
            diff = [k for (k, a), (_, b) in zip(record.metadata().fields(), meta.fields(), strict=True) if a != b]
            out.append(f"metadata differs in {', '.join(diff)}")
        if report.retired_wh is not None and record.retired_wh != report.retired_wh:
            out.append(f"retired Wh: database {record.retired_wh}, chain {report.retired_wh}")
        if (record.status is Status.REVOKED) != (report.status == "revoked"):
            out.append(f"status: database {record.status}, chain {report.status}")
        if record.status is Status.ISSUING:
            out.append("database still shows the issuance in progress")
        db_hold = {h.wallet: h.amount_wh for h in await self.store.holdings(record.id) if h.amount_wh > 0}
        chain_hold = {str(h.wallet): h.account.amount for h in holdings if h.account.amount > 0}
        if db_hold != chain_hold:
            out.append("holdings per wallet differ between database and chain")
        return out


def utc_now() -> datetime:
    return datetime.now(UTC)
