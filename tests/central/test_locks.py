"""Every advisory-lock key central takes comes from ``central.locks``, and no two collide."""

from __future__ import annotations

import re
from pathlib import Path

from central import locks

CENTRAL = Path(__file__).parents[2] / "central"


def test_keys_are_unique_and_fit_postgres() -> None:
    keys = [k.key for k in locks.KEYS]
    assert len(set(keys)) == len(keys)
    assert all(-(2**63) <= k < 2**63 for k in keys)
    spaces = [s.space for s in locks.SPACES]
    assert len(set(spaces)) == len(spaces)
    assert all(-(2**31) <= s < 2**31 for s in spaces)
    names = [x.name for x in (*locks.KEYS, *locks.SPACES, *locks.TEXTS)]
    assert len(set(names)) == len(names)


def test_text_prefixes_never_overlap() -> None:
    prefixes = [t.prefix for t in locks.TEXTS]
    for a in prefixes:
        assert not any(b != a and b.startswith(a) for b in prefixes), a


def test_every_registry_value_is_listed() -> None:
    listed = {*locks.KEYS, *locks.SPACES, *locks.TEXTS}
    declared = {v for v in vars(locks).values() if isinstance(v, locks.LockKey | locks.LockSpace | locks.LockText)}
    assert declared == listed


def test_no_module_invents_its_own_key() -> None:
    """Advisory-lock calls take their key from a parameter or a name, never from a literal in the SQL."""
    literal = re.compile(r"pg_(try_)?advisory_(xact_)?lock(_shared)?\(\s*(0x[0-9a-fA-F]+|\d+|hashtext\w*\(\s*')")
    # LOCK / NAMESPACE as a whole part of the name (``ARCHIVE_LOCK``, ``LOCK_KEY``), not inside one (``K_BLOCKS``).
    constant = re.compile(r"^(\w*_)?(LOCK|NAMESPACE)S?(_\w*)?\s*(:[^=]*)?=\s*[-\d]", re.MULTILINE)
    offenders = [
        str(path.relative_to(CENTRAL)) for path in CENTRAL.rglob("*.py")
        if path.name != "locks.py" and (literal.search(path.read_text()) or constant.search(path.read_text()))
    ]
    assert offenders == []
