"""``gridtokenx-central`` command line: the only place (with ``central.app``) that builds adapters.

    gridtokenx-central [-c central.toml] [--set section.key=value ...] migrate
    gridtokenx-central ... serve [--workers N] [--host H] [--port P]
    gridtokenx-central ... users create --email E --role admin [--password-file F]  (else read from stdin)
    gridtokenx-central ... openapi   (print the OpenAPI document, no server needed)
    gridtokenx-central ... ledger init   (idempotent platform keys, mints and treasury accounts; prints addresses)
    gridtokenx-central archive verify FILE   (re-check every signature and hash chain of a reading archive file)
    gridtokenx-central ... archive run   (create reading partitions ahead, archive the old ones, now)
    gridtokenx-central ... keys show | keys rotate --role fee-payer|mint-authority|rec-authority
    gridtokenx-central ... broker init --dynsec-file F   (the broker's first dynamic-security file, central's password)
    gridtokenx-central ... broker sync   (every registered gateway's broker access again, after the broker lost it)
    gridtokenx-central ... backup --out DIR | restore --from DIR   (central stopped; docs/operations.md)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

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
    archive = sub.add_parser("archive", help="reading archive files")
    asub = archive.add_subparsers(dest="archive_command", required=True)
    verify = asub.add_parser("verify", help="re-check every signature and hash chain of an archive file")
    verify.add_argument("file")
    asub.add_parser("run", help="one archive round now: partitions ahead, archive (export, check, drop) old ones")
    keys = sub.add_parser("keys", help="the platform's keys (files or a PKCS#11 token): show, rotate")
    keysub = keys.add_subparsers(dest="keys_command", required=True)
    keysub.add_parser("show", help="each role's public key, where it is kept and its retired keys")
    rotate = keysub.add_parser("rotate", help="rotate a role's key (stop central first; resumable)")
    rotate.add_argument("--role", required=True, choices=["fee-payer", "mint-authority", "rec-authority"])
    key = sub.add_parser("signing-key", help="central's message-signing key (protocol v1.1)")
    ksub = key.add_subparsers(dest="signing_key_command", required=True)
    ksub.add_parser("init", help="create mqtt.signing_key_file (mode 600) unless it exists; print the public key")
    sub.add_parser("openapi", help="print the OpenAPI document (the web app's API types are generated from it)")
    ksub.add_parser("show", help="print the public key to pin in gateway configurations (central_public_key)")
    broker = sub.add_parser("broker", help="the MQTT broker's access control (Mosquitto dynamic security)")
    bsub = broker.add_subparsers(dest="broker_command", required=True)
    binit = bsub.add_parser("init", help="write mqtt.password_file and the plugin's first configuration file, unless "
                                         "they exist")
    binit.add_argument("--dynsec-file", required=True, help="the plugin's file (plugin_opt_config_file)")
    bsub.add_parser("sync", help="grant every registered gateway its broker access (if missing), remove revoked ones'")
    back = sub.add_parser("backup", help="database, embedded ledger and key files into a new directory with a "
                          "checksummed manifest (stop central first)")
    back.add_argument("--out", required=True, help="the backup directory to create")
    rest = sub.add_parser("restore", help="restore a backup into a new database and empty ledger and keys "
                          "directories (central stopped)")
    rest.add_argument("--from", dest="source", required=True, help="the backup directory")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # Whoever read our output stopped (`gridtokenx-central openapi | head`): not an error; no traceback, and
        # nothing more written to the closed pipe when the interpreter flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "archive" and args.archive_command == "verify":
        from central.archive.cli import verify_command  # noqa: PLC0415 - needs no config, database or secrets

        return verify_command(args.file)
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
    command = _COMMANDS.get(args.command)
    if command is None:
        raise CentralError(f"unknown command {args.command}")
    return command(args, config, overrides)


def _migrate(_args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    from central.db import migrate_dsn  # noqa: PLC0415 - keep `--help` free of asyncpg imports

    applied = asyncio.run(migrate_dsn(config.database.dsn))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _archive(_args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    from central.archive.cli import run_command  # noqa: PLC0415 - `archive verify` is handled before the config

    return run_command(config)


def _serve(args: argparse.Namespace, config: CentralConfig, overrides: list[str]) -> int:
    from central.serve import run  # noqa: PLC0415

    return run(config, args.config, overrides)


def _users(args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    from central.identity.cli import create_user_command  # noqa: PLC0415

    return create_user_command(config, email=args.email, role=args.role, password_file=args.password_file)


def _ledger(_args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    from central.ledger.cli import init_command  # noqa: PLC0415

    return init_command(config.ledger)


def _signing_key(args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    from central.signing import init_signing_key, load_signing_key, public_key_text  # noqa: PLC0415

    if args.signing_key_command == "init":
        key, created = init_signing_key(config.mqtt.signing_key_file)
        print(("created " if created else "exists ") + config.mqtt.signing_key_file, file=sys.stderr)
    else:
        key = load_signing_key(config.mqtt.signing_key_file)
    print(public_key_text(key))
    return 0


def _keys(args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    from central.ledger import cli as ledger_cli  # noqa: PLC0415

    if args.keys_command == "show":
        from central.certificates.rotation import ISSUER_ROLE  # noqa: PLC0415
        from central.ledger.setup import KEY_ROLES  # noqa: PLC0415

        return ledger_cli.show_command(config.ledger, (*KEY_ROLES, ISSUER_ROLE))
    if args.role == "rec-authority":
        from central.certificates.cli import rotate_issuer_command  # noqa: PLC0415

        return rotate_issuer_command(config.database.dsn, config.ledger)
    return ledger_cli.rotate_command(config.ledger, args.role)


def _broker(args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    if args.broker_command == "init":
        from pathlib import Path  # noqa: PLC0415

        from central.broker.cli import init_command  # noqa: PLC0415

        return init_command(config.mqtt, Path(args.dynsec_file))
    from central.identity.cli import sync_broker_command  # noqa: PLC0415

    return sync_broker_command(config)


def _backup(args: argparse.Namespace, config: CentralConfig, _overrides: list[str]) -> int:
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from central import backup as snapshot  # noqa: PLC0415

    if args.command == "backup":
        manifest = snapshot.backup(config, Path(args.out))
    else:
        manifest = snapshot.restore(config, Path(args.source))
    print(json.dumps({"command": args.command, "files": manifest["files"],
                      "migrations": len(manifest["database"]["migrations"])}, indent=1))
    return 0


#: One function per top-level command (each parser's subcommands are required, so the name is enough).
_COMMANDS: dict[str, Callable[[argparse.Namespace, CentralConfig, list[str]], int]] = {
    "migrate": _migrate,
    "serve": _serve,
    "users": _users,
    "ledger": _ledger,
    "keys": _keys,
    "broker": _broker,
    "archive": _archive,
    "signing-key": _signing_key,
    "backup": _backup,
    "restore": _backup,
}


if __name__ == "__main__":
    raise SystemExit(main())
