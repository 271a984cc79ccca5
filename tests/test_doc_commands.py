"""Every command line the documents tell a reader to type is accepted by the program's real argument parser.

A reader copies ``gridtokenx-central … serve --workers 2`` or ``python -m edge.demo …`` from a document; a flag
that does not exist, a subcommand that was renamed, an option on the wrong side of the subcommand or a required
option left out is found here, not on an installer's machine. Commands are taken from the documents, the systemd
units, the Compose file and the example configurations: from ``sh`` blocks, inline code spans, ``ExecStart=`` and
``command:`` lines. Placeholders (``…``) and alternatives (``a|b``) are reduced to something the parser can take.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from central.cli import _parser as central_parser
from edge.cli import _parser as edge_parser
from edge.demo import _parser as edge_demo_parser
from edge.simulator.__main__ import _parser as simulator_parser

ROOT = Path(__file__).parents[1]
DOCUMENTS = sorted(
    [
        ROOT / "README.md",
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("firmware-config/**/README*.md"),
        *ROOT.glob("firmware-config/*.toml"),
        ROOT / "systemd" / "README.md",
        *ROOT.glob("systemd/*.service"),
        ROOT / "docker-compose.yml",
        ROOT / "Dockerfile",
    ]
)
PROGRAMS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "gridtokenx-central": central_parser,
    "gridtokenx-edge": edge_parser,
    "python -m edge.demo": edge_demo_parser,
    "python -m edge.simulator": simulator_parser,
}
PROGRAM = re.compile(r"(?:^|(?<=[\s/\"]))(" + "|".join(map(re.escape, PROGRAMS)) + r")(?=\s|$)")
# Where a command line ends: a comment, a shell operator, a closing parenthesis.
END = re.compile(r"\s#|&&|;|\s\|\s|\)|\s&(?:\s|$)")
NOT_A_COMMAND = {"-o", "-g", "-u", "--groups", "nologin"}  # the program's name used as a user or group name


def _snippets(path: Path) -> list[tuple[int, str, bool]]:
    """The code in a file: inline code spans and ``sh`` blocks (Markdown, comments of TOML files and the Dockerfile),
    ``ExecStart=`` lines (systemd), ``command:`` and comment lines (Compose); True for an inline code span."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))  # continued shell lines (one line number)
    out: list[tuple[int, str, bool]] = []
    in_sh = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_sh = line.strip() in {"```sh", "```console", "```bash"}
            continue
        if in_sh:
            out.append((lineno, line, False))
        elif path.suffix == ".service":
            if line.startswith("ExecStart="):
                out.append((lineno, line.removeprefix("ExecStart="), False))
        elif path.suffix == ".yml" and (line.lstrip().startswith(("command:", "#"))):
            out.append((lineno, line.split("command:", 1)[-1].lstrip(" #").strip("\"'"), False))
        out.extend((lineno, span, True) for span in re.findall(r"`([^`\n]+)`", line))
    return out


def _commands() -> list[tuple[str, str, str, bool]]:
    found = []
    for path in DOCUMENTS:
        for lineno, raw, span in _snippets(path):
            snippet = re.sub(r"\$\([^)]*\)", "X", raw)  # $(date …), $(gridtokenx-central … signing-key show)
            for m in PROGRAM.finditer(snippet):
                before = snippet[: m.start()].split()
                if before and before[-1] in NOT_A_COMMAND:
                    continue
                rest = snippet[m.end():]
                args = rest[: end.start()] if (end := END.search(rest)) else rest
                if args.strip():  # not just the program's name (`gridtokenx-edge` runs on …, a systemd unit's name)
                    found.append((f"{path.relative_to(ROOT)}:{lineno}", m[1], args, span))
    return found


def _argv(args: str) -> list[str]:
    """The arguments with the documents' placeholders filled in: optional ``[…]`` parts dropped, ``-c …`` dropped,
    another option's ``…`` a value, ``a|b|c`` the first choice."""
    argv: list[str] = []
    for token in shlex.split(re.sub(r"\[[^\]]*\]", "", args)):
        if token in {"…", "..."}:
            if argv and argv[-1] in {"-c", "--config"}:
                argv.pop()
            elif argv and argv[-1].startswith("-"):
                argv.append("X")  # an option's value left out
            continue
        argv.append(token.split("|", 1)[0])
    return argv


COMMANDS = _commands()


def test_the_commands_are_found() -> None:
    where = {(prog, tuple(_argv(args))) for _, prog, args, _ in COMMANDS}
    assert ("gridtokenx-central", ("--config", "/etc/gridtokenx/central.toml", "serve", "--workers", "2")) in where
    assert ("gridtokenx-edge", ("--config", "/etc/gridtokenx/edge.toml", "run")) in where
    assert any(prog == "python -m edge.demo" for prog, _ in where)
    assert len(COMMANDS) > 40


@pytest.mark.parametrize(("where", "prog", "args", "span"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_documented_command_parses(where: str, prog: str, args: str, span: bool) -> None:
    argv = _argv(args)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            PROGRAMS[prog]().parse_args(argv)
        except SystemExit as exc:
            if span and "the following arguments are required" in err.getvalue():
                return  # an inline span may name a command (`gridtokenx-edge scan`) without spelling out a full line
            pytest.fail(f"{where}: `{prog} {' '.join(argv)}` is refused (exit {exc.code}): {err.getvalue().strip()}")
