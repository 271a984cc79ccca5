"""Minting: final export windows become energy tokens in the owner's wallet, exactly once
(docs/decisions/0003-integer-units.md, docs/decisions/0007-exact-energy-accounting.md).

Flow: ``central.accounting`` records a final (meter, window) and, in the same transaction, enqueues one intent of
kind ``energy-mint`` with key ``"<meter id>:<window start ms>"`` into the ledger's chain outbox
(``central.chain.outbox``). ``service.MintBuilder`` turns claimed intents into one unit per destination wallet
(idempotent ATA creation where needed + ``mint_to_checked`` of the sum); each transaction carries a memo
``gtx:mint:v1 w=<window starts> len=<s> n=<mints> root=<hex>`` (``memo``). Owners without a linked wallet accrue
(the builder leaves their intents out; linking releases them). ``queries`` and ``routes`` expose my mints, a proof
per mint (``proof``) and the admin view of stuck or failed mints with retry.
"""
