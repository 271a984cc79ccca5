"""The certificates service: issue backed by verified renewable export, transfer and retire through user-signed
transaction requests (the platform pays the fee), revoke, expire.

Double issuance is impossible by two independent guards: the store claims each backing (meter, window) for exactly
one certificate (a primary key in PostgreSQL, so concurrent requests collide there), and just before the chain
transactions are prepared the service re-reads the claimed windows and refuses unless they back exactly the
certificate's energy. The chain itself (mint address derived from the certificate id, mint authority dropped after
the one mint) makes a second mint of the same certificate impossible.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from solders.instruction import Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from central.accounting.merkle import merkle_root
from central.certificates import instructions, metrics
from central.certificates.config import CertificateConfig
from central.certificates.errors import (
    AlreadyCertifiedError,
    CertificateNotFoundError,
    CertificateStateError,
    ChainError,
    InsufficientGenerationError,
    InvalidCertificateError,
    NotOwnerError,
    TooManyWaitingError,
)
from central.certificates.models import CertificateRecord, MeterInfo, RequestKind, Status, TxRequest, WindowExport
from central.certificates.operations import CertificateLedger, to_thaw
from central.certificates.store import CertificateStore, Directory, GenerationSource
from central.ledger import cosign


def add_months(t: datetime, months: int) -> datetime:
    """Same day-of-month ``months`` later, clamped to the month's last day."""
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


#: Transfers and retirements one user may have waiting for the wallet's signature at once (each is a stored row and a
#: built transaction until it expires, ``request_ttl_s``): a script cannot fill the table; a person never has more.
MAX_WAITING_REQUESTS = 10


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PreparedTransaction:
    """What the API hands the wallet: the request id and the unsigned transaction to sign."""

    request: TxRequest
    message: MessageV0

    @property
    def transaction(self) -> VersionedTransaction:
        """The transaction with empty signature slots, as wallets expect it (sign, then send back)."""
        return cosign.unsigned(self.message)


class CertificateService:
    def __init__(
        self,
        *,
        store: CertificateStore,
        directory: Directory,
        generation: GenerationSource,
        chain_ops: CertificateLedger,
        config: CertificateConfig,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.directory = directory
        self.generation = generation
        self.chain = chain_ops
        self.config = config
        self.clock = clock

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    # --- issuance ---

    async def issue(
        self,
        *,
        actor_id: UUID,
        meter_id: UUID,
        period_start: datetime,
        period_end: datetime,
        expected_wh: int | None = None,
    ) -> CertificateRecord:
        """Certify all verified, not yet certified renewable export of ``meter_id`` in [start, end) and mint it to
        the owner's linked wallet. ``expected_wh``, if given, must equal what the period holds."""
        try:
            return await self._issue(actor_id, meter_id, period_start, period_end, expected_wh)
        except (AlreadyCertifiedError, InsufficientGenerationError, InvalidCertificateError, CertificateStateError,
                CertificateNotFoundError) as exc:  # fmt: skip
            metrics.REFUSED.labels(type(exc).__name__).inc()
            raise

    async def _issue(
        self,
        actor_id: UUID,
        meter_id: UUID,
        period_start: datetime,
        period_end: datetime,
        expected_wh: int | None,
    ) -> CertificateRecord:
        window = timedelta(seconds=self.config.window_s)
        for t in (period_start, period_end):
            if t.tzinfo is None or int(t.timestamp()) % self.config.window_s or t.microsecond:
                raise InvalidCertificateError(f"period bounds must be UTC settlement-window boundaries, got {t}")
        if period_end <= period_start:
            raise InvalidCertificateError("period must end after it starts")
        meter = await self.directory.meter(meter_id)
        if meter is None:
            raise CertificateNotFoundError(f"no meter {meter_id}")
        if meter.source not in self.config.renewable_sources:
            raise CertificateStateError(f"meter {meter.serial} has no renewable source ({meter.source})")

        windows = await self.generation.final_windows(meter_id, period_start, period_end)
        wanted = (period_end - period_start) // window
        # Final windows must tile the period exactly; one gap window (an outage, central.accounting.window_energy) may
        # span several settlement windows.
        edges = [period_start, *(w.end for w in windows)]
        if not windows or [w.start for w in windows] != edges[:-1] or edges[-1] != period_end:
            covered = sum((w.end - w.start) // window for w in windows)
            raise InsufficientGenerationError(
                f"only {covered} of the period's {wanted} settlement windows are final"
            )
        backing = [w for w in windows if w.export_wh > 0]
        total = sum(w.export_wh for w in backing)
        if total == 0:
            raise InsufficientGenerationError("no verified export in the period")
        owner_id, wallet = await self._producer(meter, backing)
        if expected_wh is not None and expected_wh > total:
            raise InsufficientGenerationError(f"the period holds {total} Wh of verified export, not {expected_wh}")
        if expected_wh is not None and expected_wh != total:
            raise InvalidCertificateError(
                f"certificates cover whole settlement windows: the period holds {total} Wh, not {expected_wh}"
            )

        now = self._now()
        expires_at = add_months(period_end, self.config.expiry_months)
        if expires_at <= now:
            raise CertificateStateError(
                f"production older than {self.config.expiry_months} months can no longer be certified"
            )
        certificate_id = uuid4()
        record = CertificateRecord(
            id=certificate_id,
            mint=str(self.chain.mint_address_for(certificate_id)),
            meter_id=meter.id,
            meter_serial=meter.serial,
            owner_id=owner_id,
            owner_wallet=wallet,
            period_start=period_start,
            period_end=period_end,
            energy_wh=total,
            energy_source=meter.source,
            issuer=self.config.issuer_name,
            issued_at=now,
            expires_at=expires_at,
            readings_root=merkle_root([w.merkle_root for w in backing]),
            status=Status.ISSUING,
            issued_by=actor_id,
        )
        record.metadata()  # validates every field before anything is stored
        await self.store.reserve(record, backing)
        return await self._complete_issue(record)

    async def _producer(self, meter: MeterInfo, backing: list[WindowExport]) -> tuple[UUID, str]:
        """The owner (and linked wallet) of the production: whoever held the meter at each window's end
        (accounting records it per window, ``central.accounting.ownership``), not whoever owns the meter now.
        One owner per certificate."""
        owners = {w.owner_id if w.owner_id is not None else meter.owner_id for w in backing}
        if len(owners) != 1:
            raise CertificateStateError(
                f"meter {meter.serial} changed owner during the period; certify each owner's part separately"
            )
        owner_id = owners.pop()
        if owner_id is None:
            raise CertificateStateError(f"meter {meter.serial} has no owner")
        wallet = await self.directory.wallet_of(owner_id)
        if wallet is None:
            raise CertificateStateError("the owner of the production has no linked wallet")
        return owner_id, wallet

    async def _complete_issue(self, record: CertificateRecord) -> CertificateRecord:
        covered = await self.store.covered_wh(record.id)
        if covered != record.energy_wh:
            raise ChainError(f"certificate {record.id} claims {record.energy_wh} Wh but its windows back {covered}")
        await self.chain.issue(record.metadata(), Pubkey.from_string(record.owner_wallet))
        await self.store.mark_active(record.id)
        metrics.ISSUED.inc()
        metrics.ISSUED_WH.inc(record.energy_wh)
        return await self.store.get(record.id)

    async def resume_issuing(self, min_age: timedelta = timedelta(minutes=2)) -> int:
        """Finish certificates whose chain issuance was interrupted (windows reserved, mint not sealed) and that
        are older than ``min_age`` (younger ones may still be in their issuing request)."""
        done = 0
        for record in await self.store.list_all():
            if record.status is Status.ISSUING and record.issued_at <= self._now() - min_age:
                await self._complete_issue(record)
                done += 1
        return done

    # --- reading ---

    async def get(self, certificate_id: UUID, *, user_id: UUID, is_admin: bool) -> CertificateRecord:
        record = await self.store.get(certificate_id)
        if not is_admin and record not in await self.store.list_for_user(user_id):
            raise CertificateNotFoundError(f"no certificate {certificate_id}")  # do not reveal others' certificates
        return record

    async def list_certificates(self, *, user_id: UUID, is_admin: bool) -> list[CertificateRecord]:
        return await (self.store.list_all() if is_admin else self.store.list_for_user(user_id))

    async def retirements(self, certificate_id: UUID) -> list[TxRequest]:
        """The certificate's retirement register (public: who claimed how much, for what, when; the signature)."""
        await self.store.get(certificate_id)
        return await self.store.retirements(certificate_id)

    # --- transfer and retirement (transaction-request pattern) ---

    def _check_usable(self, record: CertificateRecord) -> None:
        if record.status is Status.REVOKED:
            raise CertificateStateError(f"certificate {record.id} is revoked")
        if record.status is Status.EXPIRED or record.expired(self._now()):
            raise CertificateStateError(f"certificate {record.id} expired at {record.expires_at}")
        if record.status is not Status.ACTIVE:
            raise CertificateStateError(f"certificate {record.id} is not issued yet")

    async def _room(self, user_id: UUID) -> None:
        """Refuse a new request while the user has MAX_WAITING_REQUESTS waiting for the wallet (before any work)."""
        if await self.store.waiting_requests(user_id, self._now()) >= MAX_WAITING_REQUESTS:
            raise TooManyWaitingError(
                f"{MAX_WAITING_REQUESTS} certificate transfers or retirements are waiting for your wallet's "
                f"signature: sign one, or wait until they expire ({self.config.request_ttl_s} s after each was made)"
            )

    async def _holder(self, user_id: UUID, amount_wh: int) -> str:
        """The wallet of the user who moves ``amount_wh`` (checked against the chain by ``_accounts``)."""
        if amount_wh <= 0:
            raise InvalidCertificateError("amount must be a positive number of Wh")
        wallet = await self.directory.wallet_of(user_id)
        if wallet is None:
            raise NotOwnerError("you have no linked wallet")
        return wallet

    async def _accounts(self, record: CertificateRecord, owner: Pubkey, amount_wh: int, *others: Pubkey) -> set[Pubkey]:
        """One read of the chain: the owner holds ``amount_wh``; returns the accounts (of the owner and ``others``)
        the transaction thaws first."""
        accounts = await self.chain.holder_accounts(Pubkey.from_string(record.mint), [owner, *others])
        account = accounts[owner]
        held = account.amount if account is not None else 0
        if held < amount_wh:
            raise NotOwnerError(f"your wallet holds {held} Wh of this certificate, not {amount_wh}")
        return to_thaw(accounts)

    async def _prepare(self, request: TxRequest, ixs: list[Instruction]) -> PreparedTransaction:
        message, last_valid = await self.chain.user_message(ixs)
        saved = replace(request, message=bytes(message), last_valid_block_height=last_valid)
        await self.store.save_request(saved)
        return PreparedTransaction(saved, message)

    async def request_transfer(
        self,
        certificate_id: UUID,
        *,
        user_id: UUID,
        amount_wh: int,
        to_user_id: UUID | None = None,
        to_wallet: str | None = None,
    ) -> PreparedTransaction:
        """Build the transfer of ``amount_wh`` to another user, named by id or by their linked wallet."""
        record = await self.store.get(certificate_id)
        self._check_usable(record)
        await self._room(user_id)
        wallet = await self._holder(user_id, amount_wh)
        if (to_user_id is None) == (to_wallet is None):
            raise InvalidCertificateError("name the recipient by user id or by wallet, not both")
        if to_wallet is not None:
            to_user_id = await self.directory.user_of_wallet(to_wallet)
            if to_user_id is None:
                raise CertificateNotFoundError("no user has linked that wallet")
        assert to_user_id is not None
        to_wallet = await self.directory.wallet_of(to_user_id)
        if to_wallet is None:
            raise CertificateStateError("the recipient has no linked wallet")
        if to_wallet == wallet:
            raise InvalidCertificateError("cannot transfer to yourself")
        mint, owner = Pubkey.from_string(record.mint), Pubkey.from_string(wallet)
        recipient = Pubkey.from_string(to_wallet)
        request_id = uuid4()
        ixs = instructions.transfer_instructions(
            mint,
            certificate_id=record.id,
            owner_wallet=owner,
            to_wallet=recipient,
            fee_payer=self.chain.fee_payer,
            amount_wh=amount_wh,
            issuer=self.chain.issuer,
            thaw=await self._accounts(record, owner, amount_wh, recipient),
            reference=str(request_id),
        )
        now = self._now()
        request = TxRequest(
            id=request_id, certificate_id=record.id, user_id=user_id, kind=RequestKind.TRANSFER, wallet=wallet,
            amount_wh=amount_wh, message=b"", last_valid_block_height=0, created_at=now,
            expires_at=now + timedelta(seconds=self.config.request_ttl_s), to_wallet=to_wallet, to_user_id=to_user_id,
        )  # fmt: skip
        return await self._prepare(request, ixs)

    async def request_retirement(
        self, certificate_id: UUID, *, user_id: UUID, amount_wh: int, retirement: instructions.Retirement
    ) -> PreparedTransaction:
        record = await self.store.get(certificate_id)
        self._check_usable(record)
        await self._room(user_id)
        wallet = await self._holder(user_id, amount_wh)
        request_id = uuid4()
        mint, owner = Pubkey.from_string(record.mint), Pubkey.from_string(wallet)
        ixs = instructions.retire_instructions(
            mint,
            certificate_id=record.id,
            owner_wallet=owner,
            amount_wh=amount_wh,
            retirement=retirement,
            issuer=self.chain.issuer,
            thaw=await self._accounts(record, owner, amount_wh),
            reference=str(request_id),
        )
        now = self._now()
        request = TxRequest(
            id=request_id, certificate_id=record.id, user_id=user_id, kind=RequestKind.RETIRE, wallet=wallet,
            amount_wh=amount_wh, message=b"", last_valid_block_height=0, created_at=now,
            expires_at=now + timedelta(seconds=self.config.request_ttl_s), retirement=retirement,
        )  # fmt: skip
        return await self._prepare(request, ixs)

    async def submit(self, request_id: UUID, signed: bytes, *, user_id: UUID) -> str:
        """Take the wallet-signed transaction, check it is the one built for this request, co-sign as fee payer,
        send, and record its effect. Returns the transaction signature."""
        request = await self.store.get_request(request_id)
        if request.user_id != user_id:
            raise CertificateNotFoundError(f"no transaction request {request_id}")
        if request.signature is not None:
            return request.signature
        if self._now() >= request.expires_at:
            raise CertificateStateError("transaction request expired; ask for a new one")
        self._check_usable(await self.store.get(request.certificate_id))  # expiry and revocation re-checked now
        try:
            tx = VersionedTransaction.from_bytes(signed)
        except ValueError as exc:
            raise InvalidCertificateError("signed transaction is not a Solana v0 transaction") from exc
        expected = MessageV0.from_bytes(request.message)
        signature = str(await self.chain.submit_user_transaction(tx, expected, request.last_valid_block_height))
        if await self.store.complete_request(request, signature, self._now()):
            counter = metrics.TRANSFERRED_WH if request.kind is RequestKind.TRANSFER else metrics.RETIRED_WH
            counter.inc(request.amount_wh)
        return signature

    # --- revocation and expiry ---

    async def _wallets(self, record: CertificateRecord) -> list[Pubkey]:
        """Every wallet that ever held the certificate (its account is the only kind the platform thaws, inside its
        own transfers and retirements; all others are frozen since creation)."""
        wallets = [record.owner_wallet, *(h.wallet for h in await self.store.holdings(record.id))]
        return [Pubkey.from_string(w) for w in dict.fromkeys(wallets)]

    async def revoke(self, certificate_id: UUID, *, actor_id: UUID, reason: str) -> CertificateRecord:
        record = await self.store.get(certificate_id)
        if record.status is Status.ISSUING:
            record = await self._complete_issue(record)
        if record.status is not Status.REVOKED:
            mint = Pubkey.from_string(record.mint)
            await self.chain.freeze_holders(mint, await self._wallets(record))
            await self.chain.mark_revoked(mint, reason)
            await self.store.mark_revoked(record.id, by=actor_id, reason=reason, at=self._now())
            metrics.REVOKED.inc()
        return await self.store.get(certificate_id)

    async def expire_due(self) -> int:
        """Freeze the holders of every certificate past its expiry, so the chain refuses transfer and retirement
        even of transactions the owner pays for themself."""
        count = 0
        for record in await self.store.due_for_expiry(self._now()):
            await self.chain.freeze_holders(Pubkey.from_string(record.mint), await self._wallets(record))
            await self.store.mark_expired(record.id)
            metrics.EXPIRED.inc()
            count += 1
        return count
