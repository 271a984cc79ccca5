"""Renewable energy certificates on chain (docs/decisions/0009-certificates-token2022-mints.md, issue 7).

One Token-2022 mint per certificate, no custom program and no Metaplex:

- mint address ``create_with_seed(issuer, certificate_id.hex, Token-2022)`` (derivable from the id; proves the
  issuer created it), 3 decimals, supply = certified Wh, mint authority dropped after the single mint;
- extensions: default-account-state = frozen, and accounts stay frozen at rest (the platform thaws a holder's
  account only inside a transfer or retirement it co-signs, which freezes it again, so a certificate moves only
  through the platform's register and revocation can freeze every holder), metadata pointer -> the mint itself,
  token metadata (name/symbol/uri and the fields in :mod:`central.certificates.metadata`: certificate id, meter
  serial, period, source, energy, issuer, issue and expiry dates, Merkle root of the backing windows' reading roots);
- transfer (transfer_checked) and retirement (burn_checked + memo naming beneficiary, purpose, consumption period)
  are signed by the holder's wallet through transaction requests (the one flow, ``central.ledger.cosign``); the
  platform co-signs as fee payer and as issuer (the thaw and the freeze around it);
- revocation freezes holders (never thawed: the issuer thaws nothing of a mint marked revoked) and writes
  ``status``/``revocation_reason`` into the metadata;
  expiry (default 12 months after the period) is refused by the service and enforced on chain by the sweeper's
  freeze.

Modules, in the order issuance walks through them: ``operations`` (``CertificateLedger``, on the one ``Platform``)
→ ``instructions`` (pure builders; ``issue_plan`` in one pass) → ``metadata`` (the values) and ``token2022``
(extension instruction encoders); ``accounts`` decodes what the chain shows. Around them: ``service``,
``validation``, ``store`` / ``pg_store`` (ports, fakes, PostgreSQL), ``routes`` (HTTP), ``client`` (API client and
demo flow).
"""
