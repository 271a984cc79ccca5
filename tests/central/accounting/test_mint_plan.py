"""Pure mint planning: one unit per wallet, ATA creation only where missing, accrual for owners without wallet,
and packed transactions within the 1232-byte limit with the memo naming exactly their mints."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from central.accounting.mint_intent import MintIntent, intent_key, parse_intent_key
from central.accounting.mint_memo import MintLeaf, mint_memo, parse_mint_memo
from central.ledger.builder import associated_token_address
from central.ledger.packing import fits, pack
from central.ledger.port import MAX_TRANSACTION_SIZE
from central.ledger.tokens import ASSOCIATED_TOKEN_PROGRAM_ID, MEMO_PROGRAM_ID, TOKEN_PROGRAM_ID
from central.minting.plan import MintAccounts, memo_instruction, mint_units

W = 900_000
ACCOUNTS = MintAccounts(Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey())


def intent(i: int, owner: uuid.UUID, window: int = 0) -> MintIntent:
    return MintIntent(
        i, uuid.UUID(int=i), owner, W * window, W * (window + 1), 100 + i, hashlib.sha256(bytes([i % 256])).digest()
    )


def test_units_group_by_wallet_create_missing_atas_and_skip_owners_without_wallet() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    wa, wb = str(Keypair().pubkey()), str(Keypair().pubkey())
    intents = [intent(1, a), intent(2, b), intent(3, a, 1), intent(4, c)]
    existing = {associated_token_address(Pubkey.from_string(wb), ACCOUNTS.energy_mint)}
    units = mint_units(intents, {a: wa, b: wb}, ACCOUNTS, existing)
    assert [u.tag for u in units] == [(1, 3), (2,)]  # c has no wallet: accrues
    ua, ub = units
    assert [ix.program_id for ix in ua.instructions] == [ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID]
    assert [ix.program_id for ix in ub.instructions] == [TOKEN_PROGRAM_ID]  # its token account exists
    mint_ix = ua.instructions[-1]
    assert mint_ix.data[0] == 14  # MintToChecked
    assert int.from_bytes(mint_ix.data[1:9], "little") == 101 + 103
    assert mint_ix.data[9] == 3  # decimals
    assert intent_key(intents[0].meter_id, 0) == f"{uuid.UUID(int=1)}:0"
    assert MintIntent.from_payload(7, intents[2].payload()) == dataclasses.replace(intents[2], id=7)


def test_packed_transactions_fit_and_memo_names_their_mints() -> None:
    owners = [uuid.uuid4() for _ in range(200)]
    wallets = {o: str(Keypair().pubkey()) for o in owners}
    intents = [intent(i * 4 + w, o, w) for i, o in enumerate(owners) for w in range(2)]
    by_id = {i.id: i for i in intents}
    units = mint_units(intents, wallets, ACCOUNTS)

    def trailer(us):  # type: ignore[no-untyped-def]
        return [memo_instruction([by_id[i].leaf for u in us for i in u.tag])]

    packed = pack(units, payer=ACCOUNTS.payer, blockhash=Hash.default(), trailer=trailer)
    assert sum(len(p.units) for p in packed) == len(units)
    for p in packed:
        assert p.size <= MAX_TRANSACTION_SIZE
        memo_ixs = [
            ix for ix in p.message.instructions if p.message.account_keys[ix.program_id_index] == MEMO_PROGRAM_ID
        ]
        assert len(memo_ixs) == 1
        parsed = parse_mint_memo(bytes(memo_ixs[0].data).decode())
        leaves: list[MintLeaf] = [by_id[i].leaf for u in p.units for i in u.tag]  # type: ignore[attr-defined]
        assert parsed.count == len(leaves)
        assert bytes(memo_ixs[0].data).decode() == mint_memo(leaves)
        assert parsed.window_starts_s == (0, 900)


def test_intent_key_parses_back_and_malformed_keys_are_none() -> None:
    meter = uuid.uuid4()
    assert parse_intent_key(intent_key(meter, 1_790_000_100_000)) == (meter, 1_790_000_100_000)
    for bad in ("", "not-a-uuid:0", f"{meter}:", f"{meter}:x", f"{meter}"):
        assert parse_intent_key(bad) is None


OWNERS = [uuid.UUID(int=10_000 + k) for k in range(4)]
WALLETS = [str(Keypair().pubkey()) for _ in OWNERS]


@st.composite
def plans(draw: st.DrawFn) -> tuple[list[MintIntent], dict[uuid.UUID, str], set[Pubkey], set[int]]:
    n = draw(st.integers(1, 400))
    windows = draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n))
    owners = draw(st.lists(st.sampled_from(OWNERS), min_size=n, max_size=n))
    intents = [
        MintIntent(k + 1, uuid.UUID(int=k % 3 + 1), o, W * w, W * (w + 1), draw(st.integers(1, 10**12)), bytes(32))
        for k, (w, o) in enumerate(zip(windows, owners, strict=True))
    ]
    linked = draw(st.lists(st.booleans(), min_size=len(OWNERS), max_size=len(OWNERS)))
    wallets = {o: w for o, w, on in zip(OWNERS, WALLETS, linked, strict=True) if on}
    existing = {
        associated_token_address(Pubkey.from_string(w), ACCOUNTS.energy_mint)
        for w in wallets.values()
        if draw(st.booleans())
    }
    solo = {i.id for i in intents if draw(st.integers(0, 9)) == 0}
    return intents, wallets, existing, solo


def memo_of(by_id: dict[int, MintIntent]):  # type: ignore[no-untyped-def]
    return lambda us: [memo_instruction([by_id[i].leaf for u in us for i in u.tag])]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plans())
def test_plan_mints_every_intent_once_in_parts_that_each_fit(
    plan: tuple[list[MintIntent], dict[uuid.UUID, str], set[Pubkey], set[int]],
) -> None:
    intents, wallets, existing, solo = plan
    by_id = {i.id: i for i in intents}
    units = mint_units(intents, wallets, ACCOUNTS, existing, solo)
    tags = [i for u in units for i in u.tag]  # type: ignore[attr-defined]
    assert sorted(tags) == sorted(i.id for i in intents if i.owner_id in wallets)  # each once; unlinked accrue
    trailer = memo_of(by_id)
    seen: set[str] = set()
    for k, u in enumerate(units):
        part = [by_id[i] for i in u.tag]  # type: ignore[attr-defined]
        (wallet,) = {wallets[i.owner_id] for i in part}
        assert fits([u], payer=ACCOUNTS.payer, trailer=trailer)
        assert int.from_bytes(u.instructions[-1].data[1:9], "little") == sum(i.amount_wh for i in part)
        ata = associated_token_address(Pubkey.from_string(wallet), ACCOUNTS.energy_mint)
        creates = u.instructions[0].program_id == ASSOCIATED_TOKEN_PROGRAM_ID
        first = wallet not in seen
        seen.add(wallet)
        is_solo = any(i.id in solo for i in part)
        if is_solo:
            assert len(part) == 1  # a solo intent always travels alone
        assert creates == (ata not in existing and (first or is_solo))
        nxt = units[k + 1] if k + 1 < len(units) else None
        if not is_solo and nxt is not None and not any(i in solo for i in nxt.tag):  # type: ignore[attr-defined]
            following = by_id[nxt.tag[0]]  # type: ignore[attr-defined]
            if wallets[following.owner_id] == wallet:  # the part was cut where the next intent no longer fitted
                bigger = mint_units([*part, following], wallets, ACCOUNTS, existing if not creates else ())
                assert len(bigger) == 2
    packed = pack(units, payer=ACCOUNTS.payer, blockhash=Hash.default(), trailer=trailer)
    assert sum(len(p.units) for p in packed) == len(units)
    assert all(p.size <= MAX_TRANSACTION_SIZE for p in packed)


def test_a_large_backlog_of_one_wallet_is_split_into_few_parts() -> None:
    owner = uuid.uuid4()
    intents = [intent(i, owner, window=i) for i in range(1, 501)]
    units = mint_units(intents, {owner: str(Keypair().pubkey())}, ACCOUNTS)
    assert 1 < len(units) < 20
    assert [i for u in units for i in u.tag] == list(range(1, 501))  # type: ignore[attr-defined]
    assert units[0].instructions[0].program_id == ASSOCIATED_TOKEN_PROGRAM_ID  # only the first part creates
    assert all(u.instructions[0].program_id == TOKEN_PROGRAM_ID for u in units[1:])
