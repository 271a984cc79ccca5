"""The web app's message catalogues (central/web/src/messages): Thai has every English key, with the same
placeholders, and every key the pages ask for exists. No browser needed: the catalogues are read as text."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "central" / "web" / "src"
_ENTRY = re.compile(r'^  "([^"]+)": "((?:[^"\\]|\\.)*)",$', re.M)
_VARS = re.compile(r"\{(\w+)\}")
_USED = re.compile(r"""\bt\(\s*["']([a-zA-Z][\w.]*)["']""")


def catalogue(lang: str) -> dict[str, str]:
    text = (WEB / "messages" / f"{lang}.ts").read_text(encoding="utf-8")
    entries = _ENTRY.findall(text)
    keys = [k for k, _ in entries]
    assert len(keys) == len(set(keys)), f"{lang}: a key appears twice"
    assert entries, f"{lang}: no entries read"
    return dict(entries)


def test_thai_has_every_key_with_the_same_placeholders() -> None:
    en, th = catalogue("en"), catalogue("th")
    missing = sorted(set(en) - set(th))
    assert not missing, f"keys missing in Thai: {missing}"
    assert not sorted(set(th) - set(en)), "Thai keys that English does not have"
    for key, text in en.items():
        assert th[key].strip(), f"{key}: empty in Thai"
        assert set(_VARS.findall(th[key])) == set(_VARS.findall(text)), f"{key}: placeholders differ"


def test_every_key_a_page_uses_is_in_the_catalogue() -> None:
    en = catalogue("en")
    used = {k for f in WEB.rglob("*.tsx") for k in _USED.findall(f.read_text(encoding="utf-8"))}
    assert used, "no t(...) calls found"
    assert not sorted(used - set(en)), f"keys used but not in the catalogue: {sorted(used - set(en))}"
