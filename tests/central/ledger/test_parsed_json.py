"""``jsonParsed`` shapes (``central.ledger.token_json``, ``central.ledger.instruction_json``): golden cases built with
the project's own instruction builders and account layouts, and Hypothesis: no bytes make a parser raise (a node
falls back to base64 / the raw instruction, so must we)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer

from central.certificates.token2022 import initialize_metadata_pointer
from central.ledger.builder import create_ata_idempotent, memo, mint_to_checked, transfer_checked
from central.ledger.instruction_json import memo_of, parsed_instruction
from central.ledger.token_json import ADDRESS_LOOKUP_TABLE_PROGRAM_ID, parsed_account
from central.ledger.tokens import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)

PROGRAMS = [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, SYSTEM_PROGRAM_ID, ASSOCIATED_TOKEN_PROGRAM_ID, MEMO_PROGRAM_ID,
            Pubkey.new_unique()]


def _parsed(ix):  # type: ignore[no-untyped-def]
    return parsed_instruction(ix.program_id, [str(a.pubkey) for a in ix.accounts], bytes(ix.data))


def test_token_instructions_parse_like_a_node() -> None:
    mint, src, dst, owner = (Keypair().pubkey() for _ in range(4))
    got = _parsed(transfer_checked(src, mint, dst, owner, amount=1234, decimals=3))
    assert got == {"program": "spl-token", "programId": str(TOKEN_PROGRAM_ID), "stackHeight": None,
                   "parsed": {"type": "transferChecked", "info": {
                       "source": str(src), "mint": str(mint), "destination": str(dst), "authority": str(owner),
                       "tokenAmount": {"amount": "1234", "decimals": 3, "uiAmount": 1.234,
                                       "uiAmountString": "1.234"}}}}
    got = _parsed(mint_to_checked(mint, dst, owner, amount=5, decimals=0))
    assert got["parsed"] == {"type": "mintToChecked", "info": {"mint": str(mint), "account": str(dst),
                             "mintAuthority": str(owner), "tokenAmount": {"amount": "5", "decimals": 0,
                                                                          "uiAmount": 5.0, "uiAmountString": "5"}}}
    ata = _parsed(create_ata_idempotent(owner, dst, mint))
    assert ata["program"] == "spl-associated-token-account"
    assert ata["parsed"]["type"] == "createIdempotent"  # type: ignore[index]
    sol = _parsed(transfer(TransferParams(from_pubkey=src, to_pubkey=dst, lamports=7)))
    assert sol["parsed"] == {"type": "transfer", "info": {"source": str(src), "destination": str(dst),
                                                          "lamports": 7}}
    note = _parsed(memo("gtx:t:1"))
    assert (note["program"], note["parsed"]) == ("spl-memo", "gtx:t:1")
    pointer = _parsed(initialize_metadata_pointer(mint, None, mint))
    assert pointer["parsed"] == {"type": "initializeMetadataPointer",
                                 "info": {"mint": str(mint), "metadataAddress": str(mint)}}
    assert memo_of([MEMO_PROGRAM_ID, TOKEN_PROGRAM_ID], [b"hello", b"x"]) == "[5] hello"


def test_token_2022_mint_with_extensions_parses() -> None:
    authority, mint = Keypair().pubkey(), Keypair().pubkey()
    base = (struct.pack("<I", 1) + bytes(authority) + struct.pack("<Q", 33721) + bytes([3, 1])
            + struct.pack("<I", 0) + bytes(32))
    def tlv(kind: int, value: bytes) -> bytes:
        return struct.pack("<HH", kind, len(value)) + value

    def text(s: str) -> bytes:
        return struct.pack("<I", len(s)) + s.encode()

    metadata = (bytes(authority) + bytes(mint) + text("REC") + text("GTXREC") + text("https://x/1")
                + struct.pack("<I", 1) + text("certificate_id") + text("abc"))
    data = (base.ljust(165, b"\0") + bytes([1]) + tlv(6, bytes([2])) + tlv(18, bytes(32) + bytes(mint))
            + tlv(19, metadata) + tlv(200, b"??"))
    got = parsed_account(Account(10**7, data, TOKEN_2022_PROGRAM_ID), None)
    assert got is not None
    assert got["program"] == "spl-token-2022"
    info = got["parsed"]["info"]
    assert (got["parsed"]["type"], info["supply"], info["decimals"], info["mintAuthority"]) == (
        "mint", "33721", 3, str(authority))
    assert info["extensions"] == [
        {"extension": "defaultAccountState", "state": {"accountState": "frozen"}},
        {"extension": "metadataPointer", "state": {"authority": None, "metadataAddress": str(mint)}},
        {"extension": "tokenMetadata", "state": {"updateAuthority": str(authority), "mint": str(mint), "name": "REC",
                                                 "symbol": "GTXREC", "uri": "https://x/1",
                                                 "additionalMetadata": [["certificate_id", "abc"]]}},
        {"extension": "unparseableExtension"},
    ]


@given(program=st.sampled_from(PROGRAMS), data=st.binary(max_size=300),
       accounts=st.lists(st.sampled_from(["a", "b", "c"]), max_size=8))
def test_no_instruction_bytes_make_the_parser_raise(program: Pubkey, data: bytes, accounts: list[str]) -> None:
    got = parsed_instruction(program, accounts, data)
    assert got["programId"] == str(program)
    assert ("parsed" in got) != ("data" in got)


@given(owner=st.sampled_from([TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, ADDRESS_LOOKUP_TABLE_PROGRAM_ID]),
       data=st.one_of(st.binary(max_size=400), st.binary(min_size=165, max_size=165),
                      st.binary(min_size=82, max_size=82)),
       decimals=st.one_of(st.none(), st.integers(0, 9)))
def test_no_account_bytes_make_the_parser_raise(owner: Pubkey, data: bytes, decimals: int | None) -> None:
    got = parsed_account(Account(1, data, owner), decimals)
    assert got is None or got["space"] == len(data)


def test_amount_instructions_name_their_accounts_and_authority_like_a_node() -> None:
    amount = struct.pack("<Q", 7)
    got = parsed_instruction(TOKEN_PROGRAM_ID, ["s", "d", "auth"], bytes([3]) + amount)
    assert got["parsed"] == {"type": "transfer", "info": {"source": "s", "destination": "d", "amount": "7",
                                                           "authority": "auth"}}
    got = parsed_instruction(TOKEN_PROGRAM_ID, ["s", "dl", "o"], bytes([4]) + amount)
    assert got["parsed"] == {"type": "approve", "info": {"source": "s", "delegate": "dl", "amount": "7", "owner": "o"}}
    got = parsed_instruction(TOKEN_2022_PROGRAM_ID, ["a", "m", "ms", "s1", "s2"], bytes([15]) + amount + bytes([2]))
    assert got["parsed"] == {"type": "burnChecked", "info": {
        "account": "a", "mint": "m",
        "tokenAmount": {"amount": "7", "decimals": 2, "uiAmount": 0.07, "uiAmountString": "0.07"},
        "multisigAuthority": "ms", "signers": ["s1", "s2"]}}
    assert "data" in parsed_instruction(TOKEN_PROGRAM_ID, ["s"], bytes([3]) + amount)  # too few accounts: raw
