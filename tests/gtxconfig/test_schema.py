"""Frozen dataclasses from type hints: types, bounds, unknown keys, defaults; each error one line with its line."""

from __future__ import annotations

import dataclasses
import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import pytest

from gtxconfig import ConfigError, Document, Invalid, Match, Range, build, build_table
from gtxconfig.secretfile import check_secret_file


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Item:
    name: Annotated[str, Match(r"[a-z]+", "lower-case letters")]
    weight: float = 1.0


@dataclass(frozen=True)
class Table:
    port: Annotated[int, Range(1, 65535)] = 8080
    ratio: Annotated[float, Range(0, 1)] = 0.5
    on: bool = True
    mode: Literal["fast", "slow"] = "fast"
    colour: Colour = Colour.RED
    data_dir: Path = Path("var")
    maybe: Path | None = None
    tags: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    lo: int = 0
    hi: int = 10

    def __post_init__(self) -> None:
        if self.hi < self.lo:
            raise Invalid("hi", "must be >= lo")


@dataclass(frozen=True)
class Root:
    table: Table = Table()
    item: tuple[Item, ...] = ()


TEXT = """\
[table]
port = 9000
ratio = 1
colour = "blue"
data_dir = "d"
tags = ["a", "b"]
kinds = ["x"]

[[item]]
name = "one"

[[item]]
name = "two"
weight = 2
"""


def test_values_defaults_and_paths_relative_to_base(tmp_path: Path) -> None:
    root = build(Root, Document.from_text("c.toml", TEXT), base=tmp_path)
    t = root.table
    assert (t.port, t.ratio, t.on, t.mode, t.colour) == (9000, 1.0, True, "fast", Colour.BLUE)
    assert isinstance(t.ratio, float)
    assert t.data_dir == tmp_path / "d"
    assert t.maybe is None
    assert (t.tags, t.kinds) == (("a", "b"), frozenset({"x"}))
    assert root.item == (Item("one"), Item("two", 2.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.port = 1  # type: ignore[misc]
    assert build(Root, Document.from_text("c.toml", "")) == Root()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("port = 9000", "prot = 9000", "c.toml:2: table.prot: unknown key (did you mean 'port'?)"),
        ("port = 9000", "port = true", "c.toml:2: table.port: must be an integer, got boolean"),
        ("port = 9000", 'port = "9000"', "c.toml:2: table.port: must be an integer, got string"),
        ("port = 9000", "port = 0", "c.toml:2: table.port: must be between 1 and 65535, got 0"),
        ("ratio = 1", "ratio = 1.5", "c.toml:3: table.ratio: must be between 0 and 1, got 1.5"),
        ('colour = "blue"', 'colour = "green"', "c.toml:4: table.colour: must be one of 'red', 'blue', got 'green'"),
        ('data_dir = "d"', 'data_dir = ""', "c.toml:5: table.data_dir: must be a non-empty path"),
        ('tags = ["a", "b"]', 'tags = ["a", 2]', "c.toml:6: table.tags[1]: must be a string, got integer"),
        ('tags = ["a", "b"]', "tags = 2", "c.toml:6: table.tags: must be an array, got integer"),
        ('kinds = ["x"]', "hi = -1", "c.toml:7: table.hi: must be >= lo"),
        ('name = "two"', 'name = "Two"', "c.toml:13: item[1].name: must be lower-case letters"),
        ('name = "two"', 'nam = "two"', "c.toml:13: item[1].nam: unknown key (did you mean 'name'?)"),
        ('name = "two"\n', "", "c.toml:12: item[1].name: is required"),
        ("[table]", "[tabel]", "c.toml:1: tabel: unknown key (did you mean 'table'?)"),
    ],
)
def test_each_error_is_one_line_naming_file_line_key_and_reason(old: str, new: str, message: str) -> None:
    text = TEXT.replace(old, new, 1)
    with pytest.raises(ConfigError) as err:
        build(Root, Document.from_text("c.toml", text))
    assert str(err.value) == message


def test_build_table_and_the_program_error_class() -> None:
    class MyError(ConfigError):
        pass

    assert build_table(Table, {"port": 1}, name="table").port == 1
    with pytest.raises(MyError, match=r"^<settings>: table\.port: must be between 1 and 65535, got 0$"):
        build_table(Table, {"port": 0}, name="table", error_type=MyError)


def test_secret_file_rule(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cret")
    os.chmod(secret, 0o600)
    check_secret_file(secret, "x.key_file")
    check_secret_file(tmp_path / "absent", "x.key_file")  # left to the reader of the setting
    os.chmod(secret, 0o640)
    with pytest.raises(ConfigError, match=r"x\.key_file .* is accessible by group or others \(mode 0640\)") as err:
        check_secret_file(secret, "x.key_file")
    assert "s3cret" not in str(err.value)
