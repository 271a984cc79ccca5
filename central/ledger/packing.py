"""Greedy packing of instruction groups ("units") into as few transactions as fit.

A unit is a group of instructions that must land together or not at all (one (meter, window) mint with its ATA
creation; one trade's three transfers). ``pack`` keeps units in order, fills each transaction until the next unit
would break the 1232-byte limit, the compute budget or ``max_units``, and never splits a unit. A cheap upper bound on
the serialized size avoids recompiling the message for every unit; the exact size is computed whenever the bound is
not conclusive, so every returned message is guaranteed to fit.

``fits`` answers whether some units fit together in one transaction (header, instructions and trailer, exactly as
``pack`` would build it), so that a caller can split its own work into units that fit before packing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey

from central.ledger.builder import MAX_COMPUTE_UNITS, compile_message, compute_budget, transaction_size
from central.ledger.errors import TransactionTooLargeError
from central.ledger.port import MAX_TRANSACTION_SIZE


@dataclass(frozen=True)
class Unit:
    instructions: tuple[Instruction, ...]
    #: The caller's reference (e.g. the outbox intent ids this unit settles); carried through untouched.
    tag: object = None
    #: Compute units this unit needs; when any unit of a transaction sets it, a compute-unit limit is added.
    compute_units: int = 0
    #: Varies the transaction's compute-unit limit (sum of salts mod 4096) so that rebuilding the same units with
    #: the same blockhash gives a different transaction (and signature); the chain outbox uses attempt counts.
    salt: int = 0


@dataclass(frozen=True)
class Packed:
    units: tuple[Unit, ...]
    message: MessageV0
    size: int
    tags: tuple[object, ...] = field(default=())


CU_MARGIN = 20_000
SALT_RANGE = 4096
#: Any blockhash: a message's size does not depend on its value.
ANY_BLOCKHASH = Hash.default()
Trailer = Callable[[Sequence[Unit]], Sequence[Instruction]]


def _ix_bound(ix: Instruction) -> int:
    # program index + compact-u16 account count (<= 3) + account indexes + compact-u16 data length (<= 3) + data
    return 1 + 3 + len(ix.accounts) + 3 + len(ix.data)


class _Bound:
    """Upper bound of a message's serialized size as instructions are added."""

    def __init__(self, payer: Pubkey, n_tables: int) -> None:
        self.keys: set[Pubkey] = {payer}
        self.signers: set[Pubkey] = {payer}
        self.body = 0
        # sig count + version + header + 3 compact lengths + blockhash + table lookups (key + 2 lengths each)
        self.fixed = 1 + 1 + 3 + 9 + 32 + n_tables * 38

    def cost(self, ixs: Sequence[Instruction]) -> tuple[int, set[Pubkey], set[Pubkey]]:
        new_keys: set[Pubkey] = set()
        new_signers: set[Pubkey] = set()
        body = 0
        for ix in ixs:
            body += _ix_bound(ix)
            if ix.program_id not in self.keys:
                new_keys.add(ix.program_id)
            for meta in ix.accounts:
                if meta.pubkey not in self.keys:
                    new_keys.add(meta.pubkey)
                if meta.is_signer and meta.pubkey not in self.signers:
                    new_signers.add(meta.pubkey)
        return body, new_keys, new_signers

    def total(self, extra_body: int = 0, extra_keys: int = 0, extra_signers: int = 0) -> int:
        return (self.fixed + self.body + extra_body + 32 * (len(self.keys) + extra_keys)
                + 64 * (len(self.signers) + extra_signers))


def _header(cur: Sequence[Unit], compute_unit_price: int | None) -> list[Instruction]:
    cu = sum(u.compute_units for u in cur)
    salt = sum(u.salt for u in cur) % SALT_RANGE
    if cu:
        return compute_budget(cu + CU_MARGIN + salt, compute_unit_price)
    return compute_budget(MAX_COMPUTE_UNITS - salt if salt else None, compute_unit_price)


def _assemble(cur: Sequence[Unit], trailer: Trailer | None, compute_unit_price: int | None) -> list[Instruction]:
    ixs = _header(cur, compute_unit_price)
    for u in cur:
        ixs.extend(u.instructions)
    if trailer is not None:
        ixs.extend(trailer(cur))
    return ixs


def unit_budget(max_compute_units: int = MAX_COMPUTE_UNITS) -> int:
    """Compute units that the units of one transaction may need together (the rest is margin and salt)."""
    return max_compute_units - CU_MARGIN - SALT_RANGE


def fits(units: Sequence[Unit], *, payer: Pubkey, blockhash: Hash = ANY_BLOCKHASH,
         lookup_tables: Sequence[AddressLookupTableAccount] = (), trailer: Trailer | None = None,
         compute_unit_price: int | None = None, max_size: int = MAX_TRANSACTION_SIZE,
         max_compute_units: int = MAX_COMPUTE_UNITS) -> bool:
    """Whether ``units`` fit together in one transaction as ``pack`` would build it (same header, trailer, size and
    compute limits). The size does not depend on the blockhash's value. A cheap upper bound answers first; the
    message is compiled only when the bound is not conclusive."""
    if not units:
        return True
    if sum(u.compute_units for u in units) > unit_budget(max_compute_units):
        return False
    ixs = _assemble(units, trailer, compute_unit_price)
    bound = _Bound(payer, len(lookup_tables))
    body, keys, signers = bound.cost(ixs)
    if bound.total(body, len(keys), len(signers)) <= max_size:
        return True
    return transaction_size(compile_message(payer, ixs, blockhash, list(lookup_tables))) <= max_size


def pack(units: Sequence[Unit], *, payer: Pubkey, blockhash: Hash,
         lookup_tables: Sequence[AddressLookupTableAccount] = (),
         trailer: Trailer | None = None, compute_unit_price: int | None = None,
         max_size: int = MAX_TRANSACTION_SIZE, max_compute_units: int = MAX_COMPUTE_UNITS,
         max_units: int | None = None) -> list[Packed]:
    """Pack ``units`` in order into v0 messages for ``payer``.

    ``trailer(units_so_far)`` returns instructions appended to each transaction (e.g. a memo naming the units);
    it is re-evaluated as units are added and counted in the size. Raises ``TransactionTooLargeError`` if a single
    unit (with header and trailer) cannot fit on its own.
    """
    out: list[Packed] = []
    tables = list(lookup_tables)

    def exact(cur: Sequence[Unit]) -> tuple[MessageV0, int]:
        msg = compile_message(payer, _assemble(cur, trailer, compute_unit_price), blockhash, tables)
        return msg, transaction_size(msg)

    cur: list[Unit] = []
    bound = _Bound(payer, len(tables))
    cu_total = 0

    def flush() -> None:
        nonlocal cur, bound, cu_total
        if cur:
            msg, size = exact(cur)
            assert size <= max_size
            out.append(Packed(tuple(cur), msg, size, tuple(u.tag for u in cur)))
        cur = []
        bound = _Bound(payer, len(tables))
        cu_total = 0

    fixed_extra = _header([Unit((), compute_units=1, salt=1)], compute_unit_price)
    fixed_body, fixed_keys, fixed_signers = bound.cost(fixed_extra)

    for unit in units:
        if unit.compute_units > unit_budget(max_compute_units):
            raise TransactionTooLargeError(f"unit needs {unit.compute_units} compute units, more than a transaction")
        if cur and (cu_total + unit.compute_units > unit_budget(max_compute_units)
                    or (max_units is not None and len(cur) >= max_units)):
            flush()
        body, new_keys, new_signers = bound.cost(unit.instructions)
        trail = trailer([*cur, unit]) if trailer is not None else []
        t_body, t_keys, t_signers = bound.cost(trail)
        estimate = bound.total(body + t_body + fixed_body,
                               len(new_keys | t_keys | fixed_keys), len(new_signers | t_signers | fixed_signers))
        fits = estimate <= max_size or exact([*cur, unit])[1] <= max_size
        if not fits:
            if not cur:
                raise TransactionTooLargeError(f"one unit alone needs {exact([unit])[1]} bytes, more than {max_size}")
            flush()
            body, new_keys, new_signers = bound.cost(unit.instructions)
            if exact([unit])[1] > max_size:
                raise TransactionTooLargeError(f"one unit alone needs {exact([unit])[1]} bytes, more than {max_size}")
        cur.append(unit)
        cu_total += unit.compute_units
        bound.body += body
        bound.keys |= new_keys
        bound.signers |= new_signers
    flush()
    return out


def pack_instructions(instructions: Sequence[Instruction], *, payer: Pubkey,
                      max_size: int = MAX_TRANSACTION_SIZE) -> list[list[Instruction]]:
    """Split instructions, in order, into as few transactions of at most ``max_size`` bytes as ``pack`` gives (each
    instruction a unit of its own; no compute-budget header). For callers that compile each group later, with a
    fresh blockhash."""
    packed = pack([Unit((ix,)) for ix in instructions], payer=payer, blockhash=ANY_BLOCKHASH, max_size=max_size)
    return [[ix for u in p.units for ix in u.instructions] for p in packed]
