"""The embedded ledger: LiteSVM in-process, persisted to disk, with a block/expiry model.

LiteSVM executes the real SPL Token, Token-2022, Associated Token Account, Memo and Address Lookup Table program
bytecode (all loaded by default). What it lacks, this class adds:
- **Persistence** (``central.ledger.store``): every landed transaction's record and account images are appended to a
  log before the signature is returned; replay on open restores accounts, history, slot and recent blockhashes.
  ``data_dir=None`` gives a purely in-memory ledger (the port's in-memory implementation for unit tests).
- **Blocks and expiry**: a slot (= block height, no skipped slots) advances every ``slot_ms`` of wall time (lazily,
  on each call) or by ``advance_slots``. Each slot has its own blockhash; a transaction is accepted only if its
  blockhash is at most ``MAX_PROCESSING_AGE`` blocks old, so ``last_valid_block_height`` means what it means on a
  cluster. (LiteSVM's own single-blockhash check is turned off in favour of this one.)
- **Signature dedup across restarts** (LiteSVM's history is in memory only), the **1232-byte limit** real clusters
  enforce, and **preflight** (simulate first) when asked.
- **Airdrops** as real system transfers from a faucet keypair kept in ``data_dir`` (mode 0600), so they have
  signatures, statuses and history like any other transaction.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from solders.account import Account
from solders.address_lookup_table_account import AddressLookupTable
from solders.clock import Clock
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from central.ledger.errors import (
    AirdropUnavailableError,
    AlreadyProcessedError,
    BlockhashNotFoundError,
    LedgerStoreError,
    TransactionFailedError,
    TransactionRejectedError,
)
from central.ledger.keys import load_or_create_key
from central.ledger.port import (
    MAX_PROCESSING_AGE,
    MAX_TRANSACTION_SIZE,
    LatestBlockhash,
    SignatureStatus,
    TokenAmount,
    TransactionRecord,
)
from central.ledger.store import (
    K_ACCOUNTS,
    K_BLOCKS,
    K_SLOT,
    K_TX,
    LogFile,
    TxFrame,
    decode_accounts,
    encode_accounts,
)
from central.ledger.tokens import MEMO_PROGRAM_ID, TOKEN_PROGRAMS, parse_token_account

_SLOT = struct.Struct("<Q32sq")
FAUCET_LAMPORTS = 500_000_000 * 10**9
#: The refusal of a transaction whose signature the ledger already holds (the Solana TransactionError name).
ALREADY_PROCESSED = "AlreadyProcessed"
SLOT_HASHES_KEPT = MAX_PROCESSING_AGE + 1
_GENESIS_SLOT = 1


@dataclass(frozen=True)
class EmbeddedConfig:
    #: Directory for the log and faucet key; None = in memory only.
    data_dir: Path | None = None
    #: Wall-clock length of a slot in milliseconds (0 = slots advance only through ``advance_slots``).
    slot_ms: int = 400
    #: Group-commit fsync interval in seconds (0 = fsync every append).
    fsync_interval: float = 0.05
    #: Compact the log on open once it is larger than this many bytes.
    compact_bytes: int = 256 * 1024 * 1024


@dataclass(slots=True)
class _TxEntry:
    slot: int
    err: object
    offset: int  # frame offset in the log, or -1 when in memory
    body: bytes | None  # the frame body, kept only for an in-memory ledger


def _token_entry(acc: Account | None) -> tuple[str, str, str, int] | None:
    if acc is None or acc.owner not in TOKEN_PROGRAMS:
        return None
    parsed = parse_token_account(acc)
    if parsed is None:
        return None
    return (str(parsed.mint), str(parsed.owner), str(acc.owner), parsed.amount)


class EmbeddedLedger:
    """The embedded ledger; implements ``central.ledger.port.Ledger``."""

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        self.config = config or EmbeddedConfig()
        self._svm = LiteSVM().with_blockhash_check(False).with_transaction_history(0)
        self._slot = _GENESIS_SLOT
        self._hashes: OrderedDict[Hash, int] = OrderedDict()  # recent blockhash -> slot it was produced in
        self._latest = Hash.default()
        self._genesis_hash: Hash | None = None
        self._block_time = int(time.time())
        self._txs: dict[Signature, _TxEntry] = {}
        #: Every landed signature in landing order, and the blocks (slot -> blockhash, time) holding them: the
        #: history JSON-RPC serves (``central.ledger.history``).
        self.order: list[Signature] = []
        self.blocks: dict[int, tuple[Hash, int]] = {}
        self._lamports: dict[Pubkey, int] = {}
        #: Token view (mint, owner, program, amount) of every account written through this ledger (None: not a
        #: token account), so pre-transaction token balances need no account reads.
        self._tok: dict[Pubkey, tuple[str, str, str, int] | None] = {}
        self._decimals: dict[Pubkey, int] = {}
        self._known: set[Pubkey] = set()  # accounts ever written through this ledger (for compaction)
        self._log: LogFile | None = None
        self._lock_fd: int | None = None
        self._closed = False
        if self.config.data_dir is None:
            self._faucet = Keypair()
            self._genesis()
        else:
            data_dir = self.config.data_dir
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LedgerStoreError(f"cannot create ledger directory {data_dir}: {e.strerror}") from None
            self._lock_fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise LedgerStoreError(f"ledger directory {data_dir} is in use by another process; other "
                                       "processes must use its JSON-RPC endpoint (rpc backend)") from None
            self._faucet = load_or_create_key("faucet", data_dir / "faucet.json", create=True)[0].signer
            self._log = LogFile(data_dir / "ledger.log", fsync_interval=self.config.fsync_interval)
            if self._log.size == 0:
                self._genesis()
            else:
                self._replay()
                if self._log.size > self.config.compact_bytes:
                    self.compact()
        self._base_slot = self._slot
        self._base_time = time.monotonic()

    # ----------------------------------------------------------------------------------------------- lifecycle

    def _genesis(self) -> None:
        faucet = Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID)
        self._set_accounts([(self._faucet.pubkey(), faucet)])
        self._append(bytes([K_ACCOUNTS]) + encode_accounts([(self._faucet.pubkey(), faucet)]))
        self._produce_slot(_GENESIS_SLOT)

    def _replay(self) -> None:
        assert self._log is not None
        for offset, body in self._log.replay():
            kind = body[0]
            if kind == K_ACCOUNTS:
                accounts, _ = decode_accounts(body, 1)
                self._set_accounts(accounts)
            elif kind == K_SLOT:
                slot, h, ts = _SLOT.unpack_from(body, 1)
                self._remember_slot(slot, Hash(h), ts)
            elif kind == K_TX:
                frame = TxFrame.decode(body)
                accounts, _ = decode_accounts(body, frame.accounts_at)
                self._set_accounts(accounts)
                sig = Signature.from_bytes(frame.signature)
                self._txs[sig] = _TxEntry(frame.slot, frame.meta["err"], offset, None)
                self.order.append(sig)
                if frame.slot == self._slot:
                    self.blocks.setdefault(frame.slot, (self._latest, frame.block_time))
            elif kind == K_BLOCKS:
                for pos in range(1, len(body), _SLOT.size):
                    slot, h, ts = _SLOT.unpack_from(body, pos)
                    self.blocks[slot] = (Hash(h), ts)
            else:
                raise LedgerStoreError(f"unknown frame kind {kind} in {self._log.path}")
        self._apply_clock()

    def compact(self) -> None:
        """Rewrite the log as the latest account images + slot state + transaction records."""
        if self._log is None:
            return
        log = self._log
        entries = sorted(self._txs.items(), key=lambda kv: kv[1].offset)
        accounts = [(a, self._svm.get_account(a)) for a in sorted(self._known, key=bytes)]

        def bodies() -> list[bytes]:
            out = [bytes([K_ACCOUNTS]) + encode_accounts(accounts[i:i + 1000]) for i in range(0, len(accounts), 1000)]
            blocks = sorted(self.blocks.items())
            out.extend(bytes([K_BLOCKS]) + b"".join(_SLOT.pack(s, bytes(h), ts) for s, (h, ts) in blocks[i:i + 1000])
                       for i in range(0, len(blocks), 1000))
            out.extend(bytes([K_SLOT]) + _SLOT.pack(s, bytes(h), self._block_time)
                       for h, s in self._hashes.items())
            for _sig, entry in entries:
                body = log.read(entry.offset)
                out.append(body[:TxFrame.decode(body).accounts_at] + encode_accounts([]))
            return out

        offsets = log.rewrite(bodies())
        base = len(offsets) - len(entries)
        for i, (_sig, entry) in enumerate(entries):
            entry.offset = offsets[base + i]

    def sync(self) -> None:
        """fsync the log now: every landed transaction becomes "finalized"."""
        if self._log is not None:
            self._log.sync()

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._log is not None:
            self._log.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # ----------------------------------------------------------------------------------------------- blocks

    def _append(self, body: bytes) -> int:
        return self._log.append(body) if self._log is not None else -1

    def _remember_slot(self, slot: int, h: Hash, ts: int) -> None:
        if self._genesis_hash is None:
            self._genesis_hash = h
        self._slot = slot
        self._latest = h
        self._block_time = ts
        self._hashes[h] = slot
        while len(self._hashes) > SLOT_HASHES_KEPT:
            self._hashes.popitem(last=False)

    def _apply_clock(self) -> None:
        self._svm.set_clock(Clock(self._slot, 0, 0, 0, self._block_time))
        self._svm.set_slot_hashes([(s, h) for h, s in reversed(self._hashes.items())])

    def _produce_slot(self, slot: int) -> None:
        h = Hash(hashlib.sha256(bytes(self._latest) + slot.to_bytes(8, "little")).digest())
        ts = int(time.time())
        self._remember_slot(slot, h, ts)
        self._apply_clock()
        self._append(bytes([K_SLOT]) + _SLOT.pack(slot, bytes(h), ts))

    def _tick(self) -> None:
        if self.config.slot_ms > 0:
            due = self._base_slot + int((time.monotonic() - self._base_time) * 1000) // self.config.slot_ms
            if due > self._slot:
                self._produce_slot(due)

    def advance_slots(self, n: int = 1) -> int:
        """Produce ``n`` more blocks now (tests, dev tools). Returns the new slot."""
        self._tick()
        self._base_slot += n
        self._produce_slot(self._slot + n)
        return self._slot

    @property
    def slot(self) -> int:
        self._tick()
        return self._slot

    def latest_blockhash(self) -> LatestBlockhash:
        self._tick()
        return LatestBlockhash(self._latest, self._slot + MAX_PROCESSING_AGE)

    # ----------------------------------------------------------------------------------------------- accounts

    def _set_accounts(self, accounts: Sequence[tuple[Pubkey, Account]]) -> None:
        for address, acc in accounts:
            self._svm.set_account(address, acc)
            self._lamports[address] = acc.lamports
            self._tok[address] = _token_entry(acc)
            self._known.add(address)

    def account(self, address: Pubkey) -> Account | None:
        acc = self._svm.get_account(address)
        if acc is None or acc.lamports == 0:
            return None
        return acc

    def token_balance(self, address: Pubkey) -> TokenAmount | None:
        acc = self.account(address)
        if acc is None:
            return None
        parsed = parse_token_account(acc)
        if parsed is None:
            return None
        return TokenAmount(parsed.amount, self.mint_decimals(parsed.mint))

    def mint_decimals(self, mint: Pubkey) -> int:
        if mint not in self._decimals:
            acc = self.account(mint)
            if acc is None or acc.owner not in TOKEN_PROGRAMS or len(acc.data) < 82:
                return 0
            self._decimals[mint] = acc.data[44]
        return self._decimals[mint]

    def rent_exempt_minimum(self, size: int) -> int:
        return int(self._svm.minimum_balance_for_rent_exemption(size))

    def _lamports_of(self, address: Pubkey) -> int:
        cached = self._lamports.get(address)
        if cached is None:
            acc = self._svm.get_account(address)
            cached = acc.lamports if acc is not None else 0
            self._lamports[address] = cached
        return cached

    # ----------------------------------------------------------------------------------------------- transactions

    def _resolve_keys(self, tx: VersionedTransaction) -> tuple[list[Pubkey], list[bool], list[Pubkey], list[Pubkey]]:
        """All account keys (static then loaded writable then loaded readonly) and whether each may be written."""
        msg = tx.message
        keys = list(msg.account_keys)
        header = msg.header
        n = len(keys)
        signed = header.num_required_signatures
        writable = [
            (i < signed - header.num_readonly_signed_accounts)
            or (signed <= i < n - header.num_readonly_unsigned_accounts)
            for i in range(n)
        ]
        loaded_w: list[Pubkey] = []
        loaded_r: list[Pubkey] = []
        if isinstance(msg, MessageV0):
            for lookup in msg.address_table_lookups:
                acc = self._svm.get_account(lookup.account_key)
                if acc is None:
                    raise TransactionRejectedError("AddressLookupTableNotFound")
                addresses = AddressLookupTable.deserialize(acc.data).addresses
                try:
                    loaded_w.extend(addresses[i] for i in bytes(lookup.writable_indexes))
                    loaded_r.extend(addresses[i] for i in bytes(lookup.readonly_indexes))
                except IndexError:
                    raise TransactionRejectedError("InvalidAddressLookupTableIndex") from None
        keys += loaded_w + loaded_r
        writable += [True] * len(loaded_w) + [False] * len(loaded_r)
        return keys, writable, loaded_w, loaded_r

    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = True) -> Signature:
        self._tick()
        if not tx.signatures:
            raise TransactionRejectedError("transaction has no signatures")
        sig = tx.signatures[0]
        if sig in self._txs:
            if skip_preflight:
                return sig  # a real node drops the duplicate silently
            raise AlreadyProcessedError(ALREADY_PROCESSED)
        raw = bytes(tx)
        if len(raw) > MAX_TRANSACTION_SIZE:
            raise TransactionRejectedError(f"transaction too large: {len(raw)} bytes > {MAX_TRANSACTION_SIZE}")
        bh_slot = self._hashes.get(tx.message.recent_blockhash)
        if bh_slot is None or self._slot > bh_slot + MAX_PROCESSING_AGE:
            raise BlockhashNotFoundError("BlockhashNotFound")
        keys, writable, loaded_w, loaded_r = self._resolve_keys(tx)
        if not skip_preflight:
            self._preflight(tx)
        payer = keys[0]
        pre = [self._lamports_of(k) for k in keys]
        pre_tok = self._token_balances(keys, writable)
        result = self._svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            err = json.loads(result.to_json())["err"]
            meta = result.meta()
            payer_after = self._svm.get_account(payer)
            if payer_after is None or payer_after.lamports == pre[0]:
                # Failed before execution (signature, fee payer, sanitize): nothing landed, no fee.
                raise TransactionRejectedError(f"transaction rejected: {err}")
        else:
            err = None
            meta = result
        images: list[tuple[Pubkey, Account | None]] = []
        post = list(pre)
        for i, k in enumerate(keys):
            if writable[i]:
                acc = self._svm.get_account(k)
                images.append((k, acc))
                lamports = acc.lamports if acc is not None else 0
                self._lamports[k] = lamports
                self._tok[k] = _token_entry(acc)
                self._known.add(k)
                post[i] = lamports
        post_tok = self._token_balances(keys, writable)
        record = {
            "err": err,
            "fee": meta.fee(),
            "logs": meta.logs(),
            "cu": meta.compute_units_consumed(),
            "pre": pre,
            "post": post,
            "preTok": pre_tok,
            "postTok": post_tok,
            "loaded": {"writable": [str(k) for k in loaded_w], "readonly": [str(k) for k in loaded_r]},
        }
        meta_json = json.dumps(record, separators=(",", ":")).encode()
        body = TxFrame.encode(self._slot, self._block_time, bytes(sig), raw, meta_json, encode_accounts(images))
        offset = self._append(body)
        self._txs[sig] = _TxEntry(self._slot, err, offset, body if offset < 0 else None)
        self.order.append(sig)
        self.blocks.setdefault(self._slot, (self._latest, self._block_time))
        return sig

    def _preflight(self, tx: VersionedTransaction) -> None:
        """What a node checks before accepting a transaction with preflight: signatures, then a simulation."""
        if not all(tx.verify_with_results()):
            raise TransactionRejectedError("transaction signature verification failure")
        sim = self._svm.simulate_transaction(tx)
        if isinstance(sim, FailedTransactionMetadata):
            err = json.loads(sim.to_json())["err"]
            raise TransactionFailedError(f"transaction simulation failed: {err}", err=err,
                                         logs=tuple(sim.meta().logs()))

    def _token_balances(self, keys: list[Pubkey], writable: list[bool]) -> list[list[object]]:
        """Token balances of the writable accounts, from the cache (filled from the ledger on first sight)."""
        out: list[list[object]] = []
        for i, k in enumerate(keys):
            if not writable[i]:
                continue
            if k in self._tok:
                entry = self._tok[k]
            else:
                entry = self._tok[k] = _token_entry(self._svm.get_account(k))
            if entry is not None:
                out.append([i, *entry])
        return out

    def status(self, sig: Signature) -> SignatureStatus | None:
        entry = self._txs.get(sig)
        if entry is None:
            return None
        # "finalized" once the record is on stable storage (fsynced); before that it survives a crash of the
        # process (it is in the kernel) but not a power loss: "confirmed".
        durable = self._log is None or entry.offset < self._log.synced_size
        return SignatureStatus(entry.slot, entry.err, "finalized" if durable else "confirmed")

    def transaction(self, sig: Signature) -> tuple[TransactionRecord, dict[str, object]] | None:
        """The record and its stored meta (balances, token balances, loaded addresses, compute units)."""
        entry = self._txs.get(sig)
        if entry is None:
            return None
        if entry.body is not None:
            body = entry.body
        else:
            assert self._log is not None
            body = self._log.read(entry.offset)
        frame = TxFrame.decode(body)
        meta = frame.meta
        rec = TransactionRecord(sig, frame.slot, frame.block_time, VersionedTransaction.from_bytes(frame.raw_tx),
                                meta["err"], meta["fee"], tuple(meta["logs"]))
        return rec, meta

    @property
    def faucet_lamports(self) -> int:
        """What the faucet still holds."""
        return self._lamports_of(self._faucet.pubkey())

    def airdrop(self, address: Pubkey, lamports: int) -> Signature:
        if lamports <= 0:
            raise AirdropUnavailableError("airdrop amount must be positive")
        if self._lamports_of(self._faucet.pubkey()) < lamports + 5000:
            raise AirdropUnavailableError("faucet is empty")
        bh = self.latest_blockhash().blockhash
        ixs = [transfer(TransferParams(from_pubkey=self._faucet.pubkey(), to_pubkey=address, lamports=lamports)),
               # A nonce memo keeps two equal airdrops in one slot from being the same (deduplicated) transaction.
               Instruction(MEMO_PROGRAM_ID, b"airdrop " + os.urandom(8).hex().encode(), [])]
        tx = VersionedTransaction(MessageV0.try_compile(self._faucet.pubkey(), ixs, [], bh), [self._faucet])
        sig = self.send(tx)
        status = self.status(sig)
        if status is None or status.err is not None:
            raise AirdropUnavailableError(f"airdrop failed: {status.err if status else 'not landed'}")
        return sig

    # ----------------------------------------------------------------------------------------------- wallets' extras

    @property
    def genesis_hash(self) -> Hash:
        assert self._genesis_hash is not None
        return self._genesis_hash

    @property
    def transaction_count(self) -> int:
        return len(self._txs)

    def recent_blocks(self) -> list[tuple[int, Hash]]:
        """The blocks whose blockhash is still valid, oldest first."""
        self._tick()
        return [(s, h) for h, s in self._hashes.items()]

    def known_accounts(self) -> list[Pubkey]:
        """Every account ever written through this ledger (``getProgramAccounts`` scans them)."""
        return list(self._known)

    def token_entries(self) -> list[tuple[Pubkey, tuple[str, str, str, int]]]:
        """(address, (mint, owner, program, amount)) of every token account."""
        return [(a, e) for a, e in self._tok.items() if e is not None]

    def blockhash_valid(self, blockhash: Hash) -> bool:
        self._tick()
        slot = self._hashes.get(blockhash)
        return slot is not None and self._slot <= slot + MAX_PROCESSING_AGE

    def simulate(self, tx: VersionedTransaction, *,
                 sig_verify: bool) -> tuple[object, list[str], int, dict[Pubkey, Account | None]]:
        """Run without landing: (error or None, logs, compute units, the accounts it would write as they would be
        after it: None for one it would close; empty when it fails). The blockhash is not checked (a wallet
        simulates before it has one); signatures only when ``sig_verify``."""
        if sig_verify and not all(tx.verify_with_results()):
            return "SignatureFailure", [], 0, {}
        if not sig_verify:
            self._svm.with_sigverify(False)
        try:
            sim = self._svm.simulate_transaction(tx)
        finally:
            if not sig_verify:
                self._svm.with_sigverify(True)
        if isinstance(sim, FailedTransactionMetadata):
            meta = sim.meta()
            return json.loads(sim.to_json())["err"], list(meta.logs()), meta.compute_units_consumed(), {}
        meta = sim.meta()
        post = {k: (a if a.lamports > 0 else None) for k, a in sim.post_accounts()}
        return None, list(meta.logs()), meta.compute_units_consumed(), post

    # ----------------------------------------------------------------------------------------------- the port

    async def get_latest_blockhash(self) -> LatestBlockhash:
        return self.latest_blockhash()

    async def get_block_height(self) -> int:
        return self.slot

    async def get_slot(self) -> int:
        return self.slot

    async def send_transaction(self, tx: VersionedTransaction, *, skip_preflight: bool = True) -> Signature:
        return self.send(tx, skip_preflight=skip_preflight)

    async def get_signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        return [self.status(s) for s in signatures]

    async def get_account(self, address: Pubkey) -> Account | None:
        return self.account(address)

    async def get_multiple_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        return [self.account(a) for a in addresses]

    async def get_balance(self, address: Pubkey) -> int:
        acc = self.account(address)
        return acc.lamports if acc is not None else 0

    async def get_token_account_balance(self, address: Pubkey) -> TokenAmount | None:
        return self.token_balance(address)

    async def get_minimum_balance_for_rent_exemption(self, size: int) -> int:
        return self.rent_exempt_minimum(size)

    async def request_airdrop(self, address: Pubkey, lamports: int) -> Signature:
        return self.airdrop(address, lamports)

    async def get_transaction(self, signature: Signature) -> TransactionRecord | None:
        found = self.transaction(signature)
        return found[0] if found is not None else None
