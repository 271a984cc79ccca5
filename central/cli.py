"""``gridtokenx-central`` command line: the only place (with ``central.app``) that builds adapters.

    gridtokenx-central [-c central.toml] [--set section.key=value ...] migrate
    gridtokenx-central ... serve [--workers N] [--host H] [--port P]
    gridtokenx-central ... users create --email E --role admin [--password-file F]  (else read from stdin)
    gridtokenx-central ... openapi   (print the OpenAPI document, no server needed)
    gridtokenx-central ... ledger init   (idempotent platform keys, mints and treasury accounts; prints addresses)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from central.config import CentralConfig, HttpConfig, load_config
from central.errors import CentralError
from central.observability.logs import configure_logging

log = logging.getLogger("central.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridtokenx-central", description="GridTokenX central ledger service")
    p.add_argument("-c", "--config", help="TOML configuration file (defaults apply when omitted)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (repeatable); VALUE is a TOML value or a bare string")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations and exit")
    serve = sub.add_parser("serve", help="run the HTTP API, ingest and background tasks")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port (SO_REUSEPORT)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    users = sub.add_parser("users", help="manage user accounts")
    usub = users.add_subparsers(dest="users_command", required=True)
    create = usub.add_parser("create", help="create a user (e-mail marked verified), e.g. the first admin")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True,
                        choices=["consumer", "prosumer", "installer", "rec_authority", "admin"])
    create.add_argument("--password-file", help="file holding the password (else read one line from stdin)")
    ledger = sub.add_parser("ledger", help="platform setup on the ledger")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True)
    lsub.add_parser("init", help="create (or check) platform keys, mints and treasury accounts; idempotent")
    key = sub.add_parser("signing-key", help="central's message-signing key (protocol v1.1)")
    ksub = key.add_subparsers(dest="signing_key_command", required=True)
    ksub.add_parser("init", help="create mqtt.signing_key_file (mode 600) unless it exists; print the public key")
    sub.add_parser("openapi", help="print the OpenAPI document (the web app's API types are generated from it)")
    ksub.add_parser("show", help="print the public key to pin in gateway configurations (central_public_key)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: list[str] = list(args.set)
    if args.command == "openapi":
        import json  # noqa: PLC0415

        from central.app import declared_routes  # noqa: PLC0415
        from central.http.openapi import build_openapi  # noqa: PLC0415

        doc = build_openapi(declared_routes(), title="GridTokenX central API", version="1",
                            server_url=HttpConfig.public_base_url)
        print(json.dumps(doc, indent=1, sort_keys=True))
        return 0
    if args.command == "serve":
        if args.workers is not None:
            overrides.append(f"http.workers={args.workers}")
        if args.host is not None:
            overrides.append(f'http.host="{args.host}"')
        if args.port is not None:
            overrides.append(f"http.port={args.port}")
    try:
        config = load_config(args.config, overrides)
    except CentralError as exc:
        print(f"gridtokenx-central: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log.level, config.log.format)
    try:
        return _dispatch(args, config, overrides)
    except CentralError as exc:
        print(f"gridtokenx-central: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, config: CentralConfig, overrides: list[str]) -> int:
    config.check_secret_files()  # every command: refuse group/other-readable secrets before touching anything
    if args.command == "migrate":
        from central.db import migrate_dsn  # noqa: PLC0415 - keep `--help` free of asyncpg imports

        applied = asyncio.run(migrate_dsn(config.database.dsn))
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
        return 0
    if args.command == "serve":
        from central.serve import run  # noqa: PLC0415

        return run(config, args.config, overrides)
    if args.command == "users" and args.users_command == "create":
        from central.identity.cli import create_user_command  # noqa: PLC0415

        return create_user_command(config, email=args.email, role=args.role, password_file=args.password_file)
    if args.command == "ledger" and args.ledger_command == "init":
        from central.ledger.cli import init_command  # noqa: PLC0415

        return init_command(config.ledger)
    if args.command == "signing-key":
        from central.signing import init_signing_key, load_signing_key, public_key_text  # noqa: PLC0415

        if args.signing_key_command == "init":
            key, created = init_signing_key(config.mqtt.signing_key_file)
            print(("created " if created else "exists ") + config.mqtt.signing_key_file, file=sys.stderr)
        else:
            key = load_signing_key(config.mqtt.signing_key_file)
        print(public_key_text(key))
        return 0
    raise CentralError(f"unknown command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
