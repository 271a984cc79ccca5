"""The line index: every key and table header of a generated TOML document is found on the line it was written."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gtxconfig import ConfigError, Document, KeyLines, KeyPath

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=12).map(
        lambda t: f'"{t}"'
    ),
    st.lists(st.integers(0, 9).map(str), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
)
TABLE = st.tuples(NAMES, st.booleans(), st.dictionaries(NAMES, VALUES, max_size=4))


@given(root=st.dictionaries(NAMES, VALUES, max_size=3), tables=st.lists(TABLE, max_size=5))
def test_every_key_is_found_on_its_line(root: dict[str, str], tables: list[tuple[str, bool, dict[str, str]]]) -> None:
    lines: list[str] = []
    expected: dict[KeyPath, int] = {}
    for key, value in root.items():
        lines.append(f"{key} = {value}")
        expected[(key,)] = len(lines)
    used: dict[str, bool] = {}  # table name -> is an array of tables
    counts: dict[str, int] = {}
    for name, is_array, keys in tables:
        if name in root or used.get(name, is_array) != is_array or (name in used and not is_array):
            continue  # keep the document valid TOML: no table defined twice, no name used both ways
        used[name] = is_array
        lines.append("")
        if is_array:
            index = counts.get(name, 0)
            counts[name] = index + 1
            lines.append(f"[[{name}]]  # element {index}")
            prefix: KeyPath = (name, index)
        else:
            lines.append(f"[ {name} ]")
            prefix = (name,)
        expected[prefix] = len(lines)
        for key, value in keys.items():
            lines.append(f"  {key} = {value}  # comment")
            expected[(*prefix, key)] = len(lines)
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # the generator writes valid TOML
    index_ = KeyLines(text)
    for path, line in expected.items():
        assert index_.line_of(path) == line, (path, text)


def test_dotted_keys_inline_tables_and_multiline_strings() -> None:
    text = 'a.b = 1\nc = """\nx = 2\n"""\nd = { e = 1 }\n[t.u]\nv = 1\n[[t.w]]\nz = 1\n[[t.w]]\nz = 2\n'
    lines = KeyLines(text)
    assert lines.line_of(("a", "b")) == 1
    assert lines.line_of(("x",)) is None  # inside a multi-line string, not a key
    assert lines.line_of(("d", "e")) == 5  # inline table: the line of its outermost key
    assert lines.line_of(("t",)) == 6  # an implicit table: its first appearance
    assert lines.line_of(("t", "w", 1, "z")) == 11
    assert lines.line_of(("t", "w", 0, "nope")) == 8  # an absent key: the line of its table


def test_errors_are_one_line_naming_file_line_key_and_reason() -> None:
    doc = Document.from_text("x.toml", "[a]\nb = 1\n")
    err = doc.error(("a", "b"), "must be a string")
    assert str(err) == "x.toml:2: a.b: must be a string"
    assert str(Document.from_mapping("<defaults>", {}).error(("a", "b"), "bad")) == "<defaults>: a.b: bad"
    with pytest.raises(ConfigError, match=r"^x\.toml: not valid TOML: .*line 1") as err:
        Document.from_text("x.toml", "[a\n")
    assert "\n" not in str(err.value)
