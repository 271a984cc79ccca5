"""The shared memo-log decoder against what the Memo program logs (on the embedded ledger, and its older quoting)."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair

from central.ledger.builder import memo, send_and_confirm
from central.ledger.embedded import EmbeddedLedger
from tests.memo_logs import memo_texts

TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x7E) | st.sampled_from("é€\t"), min_size=1,
               max_size=60)


@settings(max_examples=25, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=3), st.booleans())
def test_memo_texts_read_back_what_landed(texts: list[str], signed: bool) -> None:
    async def landed_logs() -> tuple[str, ...]:
        ledger = EmbeddedLedger()
        payer = Keypair()
        await ledger.request_airdrop(payer.pubkey(), 10**9)
        signers = [payer.pubkey()] if signed else []
        sig = await send_and_confirm(ledger, payer, [memo(t, signers) for t in texts])
        record = await ledger.get_transaction(sig)
        assert record is not None
        return record.logs

    assert memo_texts(asyncio.run(landed_logs())) == texts


def test_older_quoted_form_and_other_lines() -> None:
    body = json.dumps({"op": "retire", "beneficiary": "ACME Ltd"}, separators=(",", ":"))
    quoted = body.replace('"', '\\"')
    assert memo_texts([f'Program log: Memo (len {len(body)}): "{quoted}"']) == [body]
    assert memo_texts(['Program log: Memo (len 3): "a\\u{e9}"']) == ["aé"]
    assert memo_texts(["Program log: something else", "Program log: Memo (len 1)"]) == []
