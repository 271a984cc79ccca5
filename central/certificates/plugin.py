"""Certificates plug-in: routes, the service (once the ledger is known), and the expiry sweeper.

The ledger side is a :class:`CertificateChain`: built at start-up from the ledger plug-in's ``app[LEDGER]``,
``app[LEDGER_SETUP]`` and ``app[LEDGER_CONFIG]`` (issuer key ``<keys_dir>/rec_issuer.json``, the platform fee
payer), unless a test already put one under :data:`CERT_CHAIN`. Without a ledger (or before ``ledger init``) the
certificate routes answer 503 ``ledger_unavailable``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from central.app import POOL, Registry, background
from central.certificates.config import CertificateConfig
from central.certificates.errors import CertificateError
from central.certificates.operations import CertificateLedger as CertificateChain
from central.certificates.pg_store import PgCertificateStore, PgDirectory, PgGeneration
from central.certificates.routes import CERTIFICATES, Certificates, routes
from central.certificates.service import CertificateService
from central.certificates.validation import CertificateValidator
from central.certificates.validation import utc_now as validation_clock
from central.ledger.config import LedgerConfig
from central.ledger.keys import load_or_create_key
from central.ledger.plugin import LEDGER, LEDGER_CONFIG, LEDGER_SETUP
from central.ledger.port import Ledger
from central.ledger.setup import LedgerSetup

log = logging.getLogger(__name__)

CERT_CHAIN = web.AppKey("gtx.certificates.chain", CertificateChain)
#: The certificate issuer's key role: mint authority until sealed, freeze and metadata authority for good.
ISSUER_ROLE = "rec_issuer"
#: Only one worker process sweeps expiries per round ("gtx-rec").
SWEEP_LOCK_KEY = 0x6774782D726563


def certificate_chain(
    ledger: Ledger, ledger_config: LedgerConfig, setup: LedgerSetup, config: CertificateConfig
) -> CertificateChain:
    """What a composition root puts under :data:`CERT_CHAIN`: the certificate issuer's own key
    (``<keys_dir>/rec_issuer.json``; created only when ``ledger.create_keys``) and the platform fee payer."""
    issuer, _ = load_or_create_key(
        ISSUER_ROLE, ledger_config.keys_dir / f"{ISSUER_ROLE}.json", create=ledger_config.create_keys
    )
    return CertificateChain(ledger, issuer=issuer, fee_payer=setup.fee_payer, uri_base=config.uri_base)


def build(app: web.Application, config: CertificateConfig) -> Certificates | None:
    """The service over ``app[CERT_CHAIN]``, or over the ledger plug-in's ledger and setup (``app[LEDGER]``,
    ``app[LEDGER_SETUP]``); None when neither is there."""
    chain_ops = app.get(CERT_CHAIN)
    if chain_ops is None and LEDGER in app and LEDGER_SETUP in app and LEDGER_CONFIG in app:
        chain_ops = certificate_chain(app[LEDGER], app[LEDGER_CONFIG], app[LEDGER_SETUP], config)
        app[CERT_CHAIN] = chain_ops
    if chain_ops is None:
        return None
    pool = app[POOL]
    store = PgCertificateStore(pool)
    service = CertificateService(
        store=store, directory=PgDirectory(pool), generation=PgGeneration(pool), chain_ops=chain_ops, config=config
    )
    return Certificates(service, CertificateValidator(chain_ops, store, validation_clock))


def install(registry: Registry) -> None:
    config = registry.config.certificates
    registry.add_routes(routes)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        certs = build(app, config)
        if certs is not None:
            app[CERTIFICATES] = certs
        else:
            log.warning("certificates disabled: no ledger (CERT_CHAIN) configured")
        yield

    async def sweeper(app: web.Application) -> None:
        while True:
            await asyncio.sleep(config.expiry_sweep_s)
            certs = app.get(CERTIFICATES)
            if certs is None:
                continue
            try:
                async with app[POOL].acquire() as conn, conn.transaction():
                    if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK_KEY):
                        resumed = await certs.service.resume_issuing()
                        expired = await certs.service.expire_due()
                        if resumed or expired:
                            log.info("certificate sweep", extra={"resumed": resumed, "expired": expired})
            except (OSError, CertificateError) as exc:
                log.warning("certificate sweep failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    registry.add_task(ctx)
    registry.add_task(background("certificate-sweeper", sweeper))
