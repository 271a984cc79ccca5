"""Solana ledger access for central (docs/decisions/0001-spl-programs-not-custom-programs.md,
docs/decisions/0002-ledger-port-two-backends.md).

- ``port``: the ``Ledger`` protocol (async) and its value types; errors in ``errors`` (all ``LedgerError``).
- ``embedded``: ``EmbeddedLedger(EmbeddedConfig(data_dir, slot_ms, fsync_interval))`` — LiteSVM in-process with
  the SPL Token, Token-2022, ATA, Memo and Address Lookup Table programs, persisted to an append-only log
  (``store``), with blocks, blockhash expiry, signature dedup and the 1232-byte limit. ``data_dir=None``: in memory.
- ``jsonrpc``: ``serve(embedded, host, port)`` — standard Solana JSON-RPC for the embedded ledger.
- ``rpc``: ``RpcLedger(url)`` — the port over solana-py's ``AsyncClient`` (any cluster, or the endpoint above).
- ``builder``: instructions (ATA, mint/transfer checked, memo, compute budget, seeded accounts), v0 compile, size
  check, signing, ``send_and_confirm``, ``wait_for_statuses``.
- ``cosign``: the one flow for transactions a user's wallet signs (build with the platform as fee payer, the
  wallet's step, verify the message is unchanged, co-sign, send, ``decide`` — the chain outbox's reconciliation rule).
- ``packing``: ``pack(units, ...)`` — greedy packing of instruction groups that must stay together.
- ``lookup``: address lookup tables (create, extend, load).
- ``config`` / ``setup`` / ``cli``: ``LedgerConfig``, ``init_ledger`` (idempotent platform setup), ``load_setup``,
  ``open_ledger``, ``init_command``; ``runtime``: the ledger of a running app (``LedgerRuntime``);
  ``routes``: ``GET /api/v1/ledger``.
- ``keys``: ``PlatformKey`` (signs a message, never prints its secret) and ``FileKey`` (key files, mode 0600);
  ``hsm``: ``HsmKey``, a key in a PKCS#11 token (``gtxhsm``); ``keystore``: where the roles' keys live (files or a
  token) with next/retired keys for rotation; ``rotation``: fee payer and mint authority rotation
  (docs/decisions/0014-keys-in-pkcs11-tokens.md); ``platform``: ``Platform``, the one "ledger + platform keys and
  mints" bundle (wallets, minting, market and certificates all take it).
The durable chain outbox built on this lives in ``central.chain``.
"""
