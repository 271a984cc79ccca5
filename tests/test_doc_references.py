"""Every reference a reader meets in a comment, docstring or document can be followed.

- ``§N`` means section N of ``docs/protocol.md`` and must be one of its ``## N. …`` headings (no ``§3.4``-style
  numbers from an older layout, no "protocol 3.4" without the sign either);
- ``docs/decisions/<file>.md`` must name a record that exists (and so must a decision record's relative link to
  another record);
- design decisions are cited by their record's path, never by the old "DESIGN D<n>" numbers of a design document that
  is not in the repository. (Defect ids such as "issue 10 D4" are a different thing and stay.)

The SQL migrations are exempt from the last two rules only: once applied they are recorded by checksum and cannot be
edited; ``docs/decisions/README.md`` says how their old numbers map.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PROTOCOL = ROOT / "docs" / "protocol.md"
DECISIONS = ROOT / "docs" / "decisions"
SUFFIXES = {".py", ".md", ".toml", ".sql"}
SKIP_DIRS = {"node_modules", "build", "dist", "__pycache__"}
MIGRATIONS = ROOT / "central" / "db" / "migrations"

SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
DECISION_PATH = re.compile(r"docs/decisions/([A-Za-z0-9_.-]+\.md)")
RELATIVE_RECORD = re.compile(r"\]\((\d{4}-[a-z0-9-]+\.md)\)")
# Built from pieces so that this file does not match itself.
OLD_DESIGN = re.compile("DESIGN" + r"(?:\.md|\s+D\d+)")
OLD_SECTION = re.compile(r"\bprotocol\s+\d+\.\d+\b")


def _sources() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(part.startswith(".") or part in SKIP_DIRS for part in rel.parts):
            continue
        if path.suffix in SUFFIXES and path.is_file() and path != Path(__file__):
            out.append(path)
    return out


def _protocol_sections() -> set[str]:
    return set(re.findall(r"^## (\d+)\. ", PROTOCOL.read_text(encoding="utf-8"), flags=re.MULTILINE))


def _hits(pattern: re.Pattern[str], path: Path) -> list[tuple[int, re.Match[str]]]:
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m) for m in pattern.finditer(text)]


def test_the_sources_are_found() -> None:
    sources = _sources()
    assert PROTOCOL in sources
    assert ROOT / "protocol" / "ack.py" in sources
    assert not any(".venv" in p.parts for p in sources)
    assert _protocol_sections() >= {str(n) for n in range(1, 11)}


def test_section_references_name_headings_of_the_protocol() -> None:
    sections = _protocol_sections()
    bad = [f"{p.relative_to(ROOT)}:{line}: §{m.group(1)}"
           for p in _sources() for line, m in _hits(SECTION, p) if m.group(1) not in sections]
    assert not bad, f"§ references that are not headings of docs/protocol.md ({sorted(sections, key=int)}):\n" + \
        "\n".join(bad)


def test_no_protocol_section_numbers_of_the_old_layout() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line}: {m.group(0)}"
           for p in _sources() if not p.is_relative_to(MIGRATIONS) for line, m in _hits(OLD_SECTION, p)]
    assert not bad, "cite docs/protocol.md as §N of its headings:\n" + "\n".join(bad)


def test_decision_paths_exist() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line}: docs/decisions/{m.group(1)}"
           for p in _sources() for line, m in _hits(DECISION_PATH, p) if not (DECISIONS / m.group(1)).is_file()]
    bad += [f"{p.relative_to(ROOT)}:{line}: {m.group(1)}"
            for p in DECISIONS.glob("*.md") for line, m in _hits(RELATIVE_RECORD, p)
            if not (DECISIONS / m.group(1)).is_file()]
    assert not bad, "references to decision records that do not exist:\n" + "\n".join(bad)


def test_decisions_are_cited_by_path_not_by_old_number() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line}: {m.group(0)}"
           for p in _sources() if not p.is_relative_to(MIGRATIONS) for line, m in _hits(OLD_DESIGN, p)]
    assert not bad, "cite the record in docs/decisions/ by path instead:\n" + "\n".join(bad)


def test_the_checks_bite(tmp_path: Path) -> None:
    """Each pattern catches the kind of reference it is there for (and leaves issue 10's defect ids alone)."""
    sample = tmp_path / "sample.py"
    sample.write_text('"""Ack (protocol §3.4), ' + "DESIGN" + ' D7, docs/decisions/0099-nothing.md, protocol 3.6;'
                      ' issue 10 D4 is fine."""\n', encoding="utf-8")
    assert [m.group(1) for _, m in _hits(SECTION, sample)] == ["3.4"]
    assert "3.4" not in _protocol_sections()
    assert [m.group(0) for _, m in _hits(OLD_DESIGN, sample)] == ["DESIGN D7"]
    assert [m.group(1) for _, m in _hits(DECISION_PATH, sample)] == ["0099-nothing.md"]
    assert not (DECISIONS / "0099-nothing.md").exists()
    assert [m.group(0) for _, m in _hits(OLD_SECTION, sample)] == ["protocol 3.6"]
